package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/artifactsign"
	"github.com/keyless-cd/keyless/internal/oidc"
	"github.com/keyless-cd/keyless/internal/publish"
)

func newOIDCCommand(streams IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "oidc",
		Short: "Let CI jobs deploy with their own short-lived JWT: apiserver config and RBAC from one policy",
		Long: `One FederationPolicy file (keyless-oidc.yaml) declares which CI issuers the cluster
trusts and which pipelines (project id, branches, protected refs, environment) may
deploy to which namespace. From it:

  keyless oidc config   the kube-apiserver's AuthenticationConfiguration
  keyless oidc rbac     per pipeline, a Role listing only its manifests' kinds and a
                        RoleBinding to its exact username — never cluster-wide

See docs/oidc.md for the policy reference and the security pitfalls.`,
	}
	cmd.AddCommand(newOIDCConfigCommand(streams), newOIDCRBACCommand(streams), newOIDCCheckCommand(streams), newOIDCTokenCommand(streams))
	return cmd
}

type oidcCheckFlags struct {
	config    string
	token     string
	tokenFile string
	jwks      string
	claims    string
	output    string
	// The pull path: an artifact's signatures against the policy.
	artifact, policy, namespace, trustedRoot string
	registryFlags
}

func newOIDCCheckCommand(streams IOStreams) *cobra.Command {
	f := &oidcCheckFlags{}
	cmd := &cobra.Command{
		Use:   "check (--config authn.yaml (--token JWT | --token-file F | --claims claims.json) | --artifact oci://REF --policy P --namespace NS --trusted-root F)",
		Short: "Evaluate a token offline with the kube-apiserver's own authenticator",
		Long: `Evaluate a token against an AuthenticationConfiguration with the kube-apiserver's
own OIDC authenticator library, and print the username and groups it would get, or
the exact rule that refused it. With --jwks the issuer's keys are read from a file
(offline); without, discovery and JWKS are fetched with the configured CA.
--claims checks the rules only, on a JSON object of claims, without any signature.

The pull path: --artifact checks an OCI artifact's signatures against the rule the
controller applies to namespace --namespace under --policy (keyless controller
--trust-policy), with the Sigstore trusted root --trusted-root, and prints the
pipeline that signed it, or for each signature what did not match.

Exit status: 0 accepted, 1 denied, 2 error.`,
		Example: `  keyless oidc check --config authn.yaml --token-file job.jwt --jwks gitlab-jwks.json
  keyless oidc check --config authn.yaml --claims '{"sub":"project_path:myorg/myapp:ref_type:branch:ref:main", ...}'
  keyless oidc check --artifact oci://registry.example.com/myapp/manifests:stable \
    --policy keyless-oidc.yaml --namespace myapp --trusted-root trusted_root.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return errorExits2(runOIDCCheck(cmd, streams, f))
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "the AuthenticationConfiguration (from keyless oidc config)")
	fl.StringVar(&f.token, "token", "", "the JWT")
	fl.StringVar(&f.tokenFile, "token-file", "", "a file holding the JWT")
	fl.StringVar(&f.jwks, "jwks", "", "the issuer's JWKS (offline check)")
	fl.StringVar(&f.claims, "claims", "", "a JSON object of claims, or @FILE: check the rules only")
	fl.StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	fl.StringVar(&f.artifact, "artifact", "", "check this OCI artifact's signatures instead (oci://registry/repository:tag or @sha256:…)")
	fl.StringVar(&f.policy, "policy", "", "with --artifact: the FederationPolicy (the controller's --trust-policy)")
	fl.StringVar(&f.namespace, "namespace", "", "with --artifact: the namespace the artifact is deployed into")
	fl.StringVar(&f.trustedRoot, "trusted-root", "", "with --artifact: the Sigstore trusted root (the controller's --trusted-root)")
	f.addFlags(fl)
	return cmd
}

func runOIDCCheck(cmd *cobra.Command, streams IOStreams, f *oidcCheckFlags) error {
	if err := checkOutput(f.output); err != nil {
		return err
	}
	if f.artifact != "" {
		return runArtifactCheck(cmd, streams, f)
	}
	cfg, err := os.ReadFile(f.config)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	opts := oidc.CheckOptions{Config: cfg, Token: f.token}
	if f.tokenFile != "" {
		b, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return fmt.Errorf("--token-file: %w", err)
		}
		opts.Token = strings.TrimSpace(string(b))
	}
	if f.jwks != "" {
		if opts.JWKS, err = os.ReadFile(f.jwks); err != nil {
			return fmt.Errorf("--jwks: %w", err)
		}
	}
	if f.claims != "" {
		raw := []byte(f.claims)
		if path, ok := strings.CutPrefix(f.claims, "@"); ok {
			if raw, err = os.ReadFile(path); err != nil {
				return fmt.Errorf("--claims: %w", err)
			}
		}
		if err := json.Unmarshal(raw, &opts.Claims); err != nil {
			return fmt.Errorf("--claims: not a JSON object: %w", err)
		}
	}
	if opts.Token == "" && opts.Claims == nil {
		return errors.New("give --token, --token-file or --claims")
	}
	res, err := oidc.Check(cmd.Context(), opts)
	if errors.Is(err, oidc.ErrDenied) {
		if f.output == "json" {
			_ = writeJSON(streams.Out, map[string]any{keyAllowed: false, "reason": err.Error()})
		}
		return &ExitError{Code: 1, Err: err}
	}
	if err != nil {
		return err
	}
	if f.output == "json" {
		return writeJSON(streams.Out, map[string]any{keyAllowed: true, "user": res})
	}
	_, err = fmt.Fprintf(streams.Out, "allowed: username %q, groups %v (issuer %s)\n", res.Username, res.Groups, res.Issuer)
	return err
}

type oidcConfigFlags struct {
	policy            string
	format            string
	kubernetesVersion string
}

func newOIDCConfigCommand(streams IOStreams) *cobra.Command {
	f := &oidcConfigFlags{}
	cmd := &cobra.Command{
		Use:   "config --policy keyless-oidc.yaml",
		Short: "Write the kube-apiserver AuthenticationConfiguration that trusts the policy's pipelines",
		Long: `Write an apiserver.config.k8s.io/v1 AuthenticationConfiguration (Kubernetes 1.34+;
pass it with --authentication-config): one jwt entry per issuer whose CEL rule accepts
only the policy's pipelines (project id, refs, protected refs, environment), usernames
"<issuer>:<sub>" (e.g. gitlab:project_path:myorg/myapp:ref_type:branch:ref:main), no
groups, and user rules refusing system: names and groups.

--format flags prints the legacy --oidc-* flags instead: they trust one issuer, cannot
express any rule, and so accept every pipeline of that issuer — prefer the
AuthenticationConfiguration. --format eks prints one EKS identity provider config per
issuer (exact-match requiredClaims) and warns about every rule EKS cannot express.

The same policy is the pull path's rule for signed OCI artifacts (keyless controller
--trust-policy): --format artifact-rule prints, per namespace, the certificate
identities a signature must match (issuer, repository, its id, ref); --format
fulcio prints the config.json of a private Fulcio trusting the policy's issuers
(air-gapped clusters), which also certifies whether a GitLab ref was protected.`,
		Example: `  keyless oidc config --policy keyless-oidc.yaml > /etc/kubernetes/authn.yaml
  # kube-apiserver --authentication-config=/etc/kubernetes/authn.yaml`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			p, err := oidc.LoadPolicy(f.policy)
			if err != nil {
				return err
			}
			switch f.format {
			case "authentication-config":
				apiVersion, err := authenticationConfigVersion(f.kubernetesVersion)
				if err != nil {
					return err
				}
				out, err := p.AuthenticationConfigurationYAML()
				if err != nil {
					return err
				}
				out = []byte(strings.Replace(string(out), "apiVersion: apiserver.config.k8s.io/v1\n", "apiVersion: "+apiVersion+"\n", 1))
				_, err = streams.Out.Write(out)
				return err
			case "flags":
				if len(p.Issuers) != 1 {
					return fmt.Errorf("--format flags: the legacy flags trust exactly one issuer; the policy has %d (use the AuthenticationConfiguration)", len(p.Issuers))
				}
				is := p.Issuers[0]
				_, _ = fmt.Fprintln(streams.ErrOut, "warning: the --oidc-* flags cannot express the policy's pipeline rules: EVERY pipeline of this issuer with this audience authenticates; only the RoleBindings limit it. Prefer --format authentication-config (Kubernetes 1.30+).")
				_, err := fmt.Fprintf(streams.Out, "--oidc-issuer-url=%s\n--oidc-client-id=%s\n--oidc-username-claim=sub\n--oidc-username-prefix=%s:\n", is.URL, is.Audience, is.Name)
				if err == nil && is.CertificateAuthorityFile != "" {
					_, err = fmt.Fprintf(streams.Out, "--oidc-ca-file=%s\n", is.CertificateAuthorityFile)
				}
				return err
			case "eks":
				cfgs, lost := p.EKS()
				for _, l := range lost {
					_, _ = fmt.Fprintln(streams.ErrOut, "warning: "+l)
				}
				out, err := yaml.Marshal(cfgs)
				if err != nil {
					return err
				}
				_, err = streams.Out.Write(out)
				return err
			case "fulcio":
				out, err := p.FulcioConfig()
				if err != nil {
					return err
				}
				_, err = fmt.Fprintln(streams.Out, string(out))
				return err
			case "artifact-rule":
				return writeArtifactRules(streams, p)
			default:
				return fmt.Errorf("--format %q: want authentication-config, flags, eks, fulcio or artifact-rule", f.format)
			}
		},
	}
	cmd.Flags().StringVar(&f.policy, "policy", "keyless-oidc.yaml", "the FederationPolicy file")
	cmd.Flags().StringVar(&f.kubernetesVersion, "kubernetes-version", "1.37", "the cluster's Kubernetes version: apiserver.config.k8s.io/v1 from 1.34, v1beta1 for 1.30–1.33")
	cmd.Flags().StringVar(&f.format, "format", "authentication-config", "authentication-config, flags (legacy --oidc-* flags), eks (identity provider configs for aws eks associate-identity-provider-config, with what EKS cannot express listed), artifact-rule (the signers allowed per namespace) or fulcio (a private Fulcio's config.json)")
	return cmd
}

// authenticationConfigVersion is the AuthenticationConfiguration apiVersion a
// Kubernetes minor version accepts (structured authentication: beta in 1.30,
// GA in 1.34).
func authenticationConfigVersion(v string) (string, error) {
	var major, minor int
	if _, err := fmt.Sscanf(strings.TrimPrefix(v, "v"), "%d.%d", &major, &minor); err != nil || major != 1 {
		return "", fmt.Errorf("--kubernetes-version %q: want 1.MINOR, e.g. 1.37", v)
	}
	switch {
	case minor >= 34:
		return "apiserver.config.k8s.io/v1", nil
	case minor >= 30:
		return "apiserver.config.k8s.io/v1beta1", nil
	}
	return "", fmt.Errorf("--kubernetes-version %s: structured authentication needs Kubernetes 1.30 or later; use --format flags (one issuer, no rules)", v)
}

type oidcRBACFlags struct {
	policy string
	root   string
	name   string
}

func newOIDCRBACCommand(streams IOStreams) *cobra.Command {
	f := &oidcRBACFlags{}
	cmd := &cobra.Command{
		Use:   "rbac --policy keyless-oidc.yaml",
		Short: "Write, per pipeline, a Role as small as its manifests and a RoleBinding to its identity",
		Long: `Render each pipeline's manifests (plain, kustomize or Helm) and write a Role in its
namespace whose rules list only the resource kinds they contain (verbs get, list,
watch, create, patch, update, delete), plus the ConfigMap keyless deploy keeps its
inventory in, and a RoleBinding to the pipeline's exact username(s). Never a
ClusterRole or ClusterRoleBinding. Apply the output as a cluster admin.`,
		Example: `  keyless oidc rbac --policy keyless-oidc.yaml | kubectl apply -f -`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := oidc.LoadPolicy(f.policy)
			if err != nil {
				return err
			}
			root := f.root
			if root == "" {
				root = filepath.Dir(f.policy)
			}
			roles, bindings, err := p.RBAC(cmd.Context(), oidc.RBACOptions{Root: root, InventoryName: f.name})
			if err != nil {
				return err
			}
			var docs []string
			for i := range roles {
				for j, o := range []any{roles[i], bindings[i]} {
					b, err := yaml.Marshal(o)
					if err != nil {
						return err
					}
					doc := strings.Replace(string(b), "  creationTimestamp: null\n", "", 1)
					if j == 0 {
						doc = oidc.RoleComment + doc
					}
					docs = append(docs, doc)
				}
			}
			if len(docs) == 0 {
				return errors.New("the policy has no pipelines")
			}
			_, err = fmt.Fprint(streams.Out, strings.Join(docs, "---\n"))
			return err
		},
	}
	cmd.Flags().StringVar(&f.policy, "policy", "keyless-oidc.yaml", "the FederationPolicy file")
	cmd.Flags().StringVar(&f.root, "root", "", "folder the manifests paths are relative to (default the policy's folder)")
	cmd.Flags().StringVar(&f.name, "name", "", "the --name keyless deploy will use (default each manifests folder's base name)")
	return cmd
}

// writeArtifactRules prints, per namespace of the policy, the identities a
// signed artifact (or a gitsign commit) deployed there must carry, in the
// shape of spec.source.verify (matchIdentities, transparencyLog).
func writeArtifactRules(streams IOStreams, p *oidc.FederationPolicy) error {
	out := map[string]any{}
	for _, ns := range p.ArtifactVerifyNamespaces() {
		ids, notes, err := p.ArtifactIdentities(ns)
		if err != nil {
			return err
		}
		for _, n := range notes {
			_, _ = fmt.Fprintln(streams.ErrOut, "note: "+n)
		}
		match := make([]kv1.SigningIdentity, 0, len(ids))
		for _, id := range ids {
			match = append(match, kv1.SigningIdentity{Issuer: id.Issuer, Subject: id.SubjectRegexp, Repository: id.SourceRepositoryURI,
				RepositoryID: id.SourceRepositoryIdentifier, Ref: id.SourceRepositoryRef})
		}
		log := kv1.TransparencyLogRequired
		if p.SkipTransparencyLog() {
			log = kv1.TransparencyLogSkip
		}
		out[ns] = kv1.VerifySource{MatchIdentities: match, TransparencyLog: log}
	}
	b, err := yaml.Marshal(out)
	if err != nil {
		return err
	}
	_, err = streams.Out.Write(b)
	return err
}

// runArtifactCheck verifies --artifact under the policy's rule for
// --namespace, as the controller would.
func runArtifactCheck(cmd *cobra.Command, streams IOStreams, f *oidcCheckFlags) error {
	if f.policy == "" || f.namespace == "" || f.trustedRoot == "" {
		return errors.New("--artifact needs --policy, --namespace and --trusted-root (what the controller is given)")
	}
	p, err := oidc.LoadPolicy(f.policy)
	if err != nil {
		return err
	}
	tr, err := root.NewTrustedRootFromPath(f.trustedRoot)
	if err != nil {
		return fmt.Errorf("--trusted-root: %w", err)
	}
	ids, notes, err := p.ArtifactIdentities(f.namespace)
	if err != nil {
		return err
	}
	for _, n := range notes {
		_, _ = fmt.Fprintln(streams.ErrOut, "note: "+n)
	}
	ref, err := publish.ParseRef(f.artifact)
	if err != nil {
		return err
	}
	reg, err := f.options(streams, ref)
	if err != nil {
		return err
	}
	v, err := publish.VerifyArtifact(cmd.Context(), ref, reg, artifactsign.Policy{TrustedRoot: tr, Identities: ids, SkipTransparencyLog: p.SkipTransparencyLog()})
	var verr *artifactsign.VerifyError
	if errors.As(err, &verr) || errors.Is(err, artifactsign.ErrUnsigned) {
		if f.output == "json" {
			_ = writeJSON(streams.Out, map[string]any{keyAllowed: false, "reason": err.Error()})
		}
		return &ExitError{Code: 1, Err: err}
	}
	if err != nil {
		return err
	}
	if f.output == "json" {
		return writeJSON(streams.Out, map[string]any{keyAllowed: true, "signer": v})
	}
	_, err = fmt.Fprintf(streams.Out, "allowed: signed by %s\n", v)
	return err
}

// keyAllowed is the verdict's key in oidc check -o json.
const keyAllowed = "allowed"

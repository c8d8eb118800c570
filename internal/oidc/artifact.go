package oidc

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/keyless-cd/keyless/internal/artifactsign"
)

// The pull path's half of the one trust policy: the pipelines a
// FederationPolicy trusts to deploy into a namespace are the pipelines whose
// signed artifacts the controller deploys there. A pipeline's rule becomes
// Fulcio certificate identities (artifactsign.Identity): the token's issuer,
// the repository (SourceRepositoryURI and its immutable id), and each
// allowed ref (SourceRepositoryRef). Fulcio copies these from the CI job's
// token into the certificate; a fork's merge request (ref
// refs/merge-requests/N/head, or another repository) and a feature branch
// do not match.
//
// Protection: Sigstore's public Fulcio does not put GitLab's ref_protected
// in the certificate. The private Fulcio config keyless generates
// (FulcioConfig) does: an unprotected ref is certified as
// "unprotected:refs/heads/x", which no identity of a protectedOnly pipeline
// matches. Against the public instance, protectedOnly is enforced on the
// push path only; ArtifactIdentities says so in its notes.

// SigstoreAudience is the audience of the token a CI job exchanges with
// Fulcio (GitLab id_tokens aud, GitHub's audience parameter), as Sigstore
// uses.
const SigstoreAudience = "sigstore"

// unprotectedPrefix marks, in a keyless-configured Fulcio's certificates,
// a ref that was not protected.
const unprotectedPrefix = "unprotected:"

// ErrNoArtifactRule is returned when the policy has no pipeline for a
// namespace, or one that cannot be expressed as a certificate identity.
var ErrNoArtifactRule = errors.New("no artifact signing rule")

// ArtifactIdentities are the certificate identities allowed to sign what is
// deployed into namespace: one per pipeline and allowed ref. notes say what
// the pull path cannot check that the push path does (an environment).
func (p *FederationPolicy) ArtifactIdentities(namespace string) (ids []artifactsign.Identity, notes []string, err error) {
	for i, pl := range p.Pipelines {
		if pl.Namespace != namespace {
			continue
		}
		is := p.issuer(pl.Issuer)
		if len(pl.Refs) == 0 {
			return nil, nil, fmt.Errorf("pipelines[%d] (%s): trusted by environment %q only, which a Fulcio certificate does not name: add refs to sign artifacts: %w", i, pl.Project, pl.Environment, ErrNoArtifactRule)
		}
		if pl.Environment != "" {
			notes = append(notes, fmt.Sprintf("pipelines[%d] (%s): environment %s is checked on the push path only (a Fulcio certificate does not name it)", i, pl.Project, pl.Environment))
		}
		repo, err := repositoryURI(is, pl.Project)
		if err != nil {
			return nil, nil, fmt.Errorf("pipelines[%d]: %w", i, err)
		}
		for _, r := range pl.Refs {
			ids = append(ids, artifactsign.Identity{
				Issuer: is.URL, SourceRepositoryURI: repo, SourceRepositoryIdentifier: pl.ProjectID,
				SourceRepositoryRef: fullRef(pl, r),
			})
		}
	}
	if len(ids) == 0 {
		return nil, nil, fmt.Errorf("no pipeline of the policy deploys into namespace %q: %w", namespace, ErrNoArtifactRule)
	}
	return ids, notes, nil
}

// repositoryURI is the SourceRepositoryURI Fulcio certifies for project:
// GitLab's instance URL (its issuer URL) and the project path; GitHub's
// server (github.com for the public issuer) and owner/repo.
func repositoryURI(is Issuer, project string) (string, error) {
	switch is.Provider {
	case ProviderGitLab:
		return strings.TrimSuffix(is.URL, "/") + "/" + project, nil
	case ProviderGitHub:
		u, err := url.Parse(is.URL)
		if err != nil {
			return "", err
		}
		if u.Host == "token.actions.githubusercontent.com" {
			return "https://github.com/" + project, nil
		}
		return u.Scheme + "://" + u.Host + "/" + project, nil // GitHub Enterprise Server
	}
	return "", fmt.Errorf("issuer %s (%s): only GitLab and GitHub tokens name a repository in a Fulcio certificate: %w", is.Name, is.Provider, ErrNoArtifactRule)
}

// fulcioTemplates are the ci-provider templates of a keyless-configured
// Fulcio (its config.json CIIssuerMetadata), by provider: Fulcio's own
// gitlab-pipeline and github-workflow templates, with the instance URL of
// the issuer and, for protection, SourceRepositoryRef prefixed by
// "unprotected:" when the token says the ref was not protected.
var fulcioTemplates = map[string]map[string]any{
	ProviderGitLab: {
		"ExtensionTemplates": map[string]string{
			"SourceRepositoryURI":        "{{ .url }}/{{ .project_path }}",
			"SourceRepositoryRef":        `{{ if ne .ref_protected "true" }}` + unprotectedPrefix + `{{ end }}refs/{{ if eq .ref_type "branch" }}heads/{{ else }}tags/{{ end }}{{ .ref }}`,
			"SourceRepositoryIdentifier": "project_id",
			"SourceRepositoryOwnerURI":   "{{ .url }}/{{ .namespace_path }}",
			"SourceRepositoryDigest":     "sha",
			"BuildTrigger":               "pipeline_source",
			"RunInvocationURI":           "{{ .url }}/{{ .project_path }}/-/jobs/{{ .job_id }}",
			"RunnerEnvironment":          "runner_environment",
		},
		"SubjectAlternativeNameTemplate": "{{ .url }}/{{ .project_path }}//.gitlab-ci.yml@refs/{{ if eq .ref_type \"branch\" }}heads/{{ else }}tags/{{ end }}{{ .ref }}",
	},
	ProviderGitHub: {
		"ExtensionTemplates": map[string]string{
			"SourceRepositoryURI":        "{{ .url }}/{{ .repository }}",
			"SourceRepositoryRef":        `{{ if eq .ref_protected "false" }}` + unprotectedPrefix + `{{ end }}{{ .ref }}`,
			"SourceRepositoryIdentifier": "repository_id",
			"SourceRepositoryOwnerURI":   "{{ .url }}/{{ .repository_owner }}",
			"SourceRepositoryDigest":     "sha",
			"BuildTrigger":               "event_name",
			"RunInvocationURI":           "{{ .url }}/{{ .repository }}/actions/runs/{{ .run_id }}",
			"RunnerEnvironment":          "runner_environment",
		},
		"SubjectAlternativeNameTemplate": "{{ .url }}/{{ .job_workflow_ref }}",
	},
}

// FulcioConfig is the config.json of a private Fulcio (air-gapped
// clusters, and the tests) trusting the policy's GitLab and GitHub issuers
// for tokens of audience SigstoreAudience, certifying what
// ArtifactIdentities checks, protection included.
func (p *FederationPolicy) FulcioConfig() ([]byte, error) {
	issuers := map[string]any{}
	meta := map[string]any{}
	for _, is := range p.Issuers {
		tmpl, ok := fulcioTemplates[is.Provider]
		if !ok {
			continue
		}
		name := "keyless-" + is.Provider + "-" + is.Name
		entry := map[string]any{"IssuerURL": is.URL, "ClientID": SigstoreAudience, "Type": "ci-provider", "CIProvider": name}
		if is.CertificateAuthorityFile != "" {
			ca, err := os.ReadFile(is.CertificateAuthorityFile)
			if err != nil {
				return nil, fmt.Errorf("issuer %s: %w", is.Name, err)
			}
			entry["CACert"] = string(ca)
		}
		issuers[is.URL] = entry
		base := strings.TrimSuffix(is.URL, "/")
		if is.Provider == ProviderGitHub {
			base = "https://github.com"
			if u, err := url.Parse(is.URL); err == nil && u.Host != "token.actions.githubusercontent.com" {
				base = u.Scheme + "://" + u.Host
			}
		}
		m := map[string]any{"DefaultTemplateValues": map[string]string{"url": base}}
		for k, v := range tmpl {
			m[k] = v
		}
		meta[name] = m
	}
	if len(issuers) == 0 {
		return nil, fmt.Errorf("the policy has no GitLab or GitHub issuer for a Fulcio to trust: %w", ErrNoArtifactRule)
	}
	return json.MarshalIndent(map[string]any{"OIDCIssuers": issuers, "CIIssuerMetadata": meta}, "", "  ")
}

// ArtifactVerifyNamespaces are the namespaces the policy's pipelines deploy
// into, sorted.
func (p *FederationPolicy) ArtifactVerifyNamespaces() []string {
	seen := map[string]bool{}
	for _, pl := range p.Pipelines {
		seen[pl.Namespace] = true
	}
	out := make([]string, 0, len(seen))
	for ns := range seen {
		out = append(out, ns)
	}
	sort.Strings(out)
	return out
}

// ForController is the policy as the controller reads it from a mounted
// folder dir: each issuer's certificateAuthorityFile read and returned as
// a file ca-<issuer>.pem, its path rewritten to dir/ca-<issuer>.pem; the
// policy as YAML under the key policy.yaml (keyless install --trust-policy).
func (p *FederationPolicy) ForController(dir string) (map[string][]byte, error) {
	out := map[string][]byte{}
	cp := *p
	cp.Issuers = append([]Issuer(nil), p.Issuers...)
	for i, is := range cp.Issuers {
		if is.CertificateAuthorityFile == "" {
			continue
		}
		ca, err := os.ReadFile(is.CertificateAuthorityFile)
		if err != nil {
			return nil, fmt.Errorf("issuer %s: %w", is.Name, err)
		}
		name := "ca-" + is.Name + ".pem"
		out[name] = ca
		cp.Issuers[i].CertificateAuthorityFile = strings.TrimSuffix(dir, "/") + "/" + name
	}
	b, err := yaml.Marshal(&cp)
	if err != nil {
		return nil, err
	}
	out["policy.yaml"] = b
	return out, nil
}

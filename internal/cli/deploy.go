package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyless-cd/keyless/internal/oidc"
)

type deployFlags struct {
	renderFlags
	tok       tokenFlags
	namespace string
	server    string
	caFile    string
	tokenEnv  string
	tokenFile string
	convergeFlags
}

func newDeployCommand(streams IOStreams) *cobra.Command {
	f := &deployFlags{}
	cmd := &cobra.Command{
		Use:   "deploy DIR -n NAMESPACE --server URL --certificate-authority FILE (--token-env VAR | --provider github --audience A)",
		Short: "Deploy from a CI job with the job's own short-lived OIDC token (no kubeconfig, nothing stored)",
		Long: `The push path: for what does not fit GitOps (migrations, bootstrap), a CI job
applies DIR with the JWT its platform issues per job (GitLab id_tokens, a GitHub
Actions OIDC token). The API server trusts the issuer through the configuration from
"keyless oidc config", and RBAC from "keyless oidc rbac" lets exactly this pipeline
manage exactly its manifests' kinds in one namespace.

Before applying, keyless asks the API server who the token is (a SelfSubjectReview,
like kubectl auth whoami) and prints it. A refused token (401) or a forbidden action
(403) is explained: which identity, which namespace, what to fix. The apply itself is
the engine of "keyless apply": namespace guard, whole-set dry-run, server-side apply,
inventory and prune, wait.`,
		Example: `  # GitLab CI job with id_tokens: {K8S_TOKEN: {aud: k8s-prod}}
  keyless deploy deploy/migrations -n myapp --server https://k8s.example.com:6443 \
    --certificate-authority cluster-ca.pem --token-env K8S_TOKEN --wait 5m`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDeploy(cmd, streams, f, args[0])
		},
	}
	f.renderFlags.addFlags(cmd.Flags())
	fl := cmd.Flags()
	fl.StringVarP(&f.namespace, "namespace", "n", "", "target namespace (required)")
	fl.StringVar(&f.server, "server", "", "API server URL (required)")
	fl.StringVar(&f.caFile, "certificate-authority", "", "PEM file of the cluster CA (required; TLS is always verified)")
	fl.StringVar(&f.tokenEnv, "token-env", "", "environment variable holding the job's OIDC token (e.g. K8S_TOKEN from GitLab id_tokens)")
	fl.StringVar(&f.tok.provider, "provider", "", "get the token from the CI platform instead: gitlab (id_tokens variable, see --from-env), github (requested now) or auto")
	fl.StringVar(&f.tok.audience, "audience", "", "with --provider github: the audience to request")
	fl.StringVar(&f.tok.fromEnv, "from-env", "K8S_TOKEN", "with --provider gitlab: the id_tokens variable")
	fl.StringVar(&f.tokenFile, "token-file", "", "file holding the job's OIDC token")
	f.convergeFlags.addFlags(fl)
	return cmd
}

func (f *deployFlags) token(cmd *cobra.Command, streams IOStreams) (string, error) {
	switch {
	case f.tok.provider != "" && (f.tokenEnv != "" || f.tokenFile != ""):
		return "", errors.New("--provider excludes --token-env and --token-file")
	case f.tok.provider != "":
		return f.tok.source().Token(cmd.Context())
	case f.tokenEnv != "" && f.tokenFile != "":
		return "", errors.New("--token-env and --token-file exclude each other")
	case f.tokenEnv != "":
		if t := strings.TrimSpace(streams.getenv(f.tokenEnv)); t != "" {
			return t, nil
		}
		return "", fmt.Errorf("--token-env %s: the variable is empty or unset (GitLab: declare it under id_tokens with the audience of the policy)", f.tokenEnv)
	case f.tokenFile != "":
		b, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return "", fmt.Errorf("--token-file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return "", errors.New("give the job's token with --token-env VAR, --token-file FILE or --provider gitlab|github")
}

func runDeploy(cmd *cobra.Command, streams IOStreams, f *deployFlags, dir string) error {
	if err := checkOutput(f.output); err != nil {
		return err
	}
	if f.namespace == "" || f.server == "" || f.caFile == "" {
		return errors.New("-n/--namespace, --server and --certificate-authority are required")
	}
	ca, err := os.ReadFile(f.caFile)
	if err != nil {
		return fmt.Errorf("--certificate-authority: %w", err)
	}
	token, err := f.token(cmd, streams)
	if err != nil {
		return err
	}
	name, err := inventoryName(f.name, dir)
	if err != nil {
		return err
	}
	rendered, err := f.render(cmd.Context(), cmd.ErrOrStderr(), dir, f.namespace)
	if err != nil {
		return err
	}
	target := oidc.Target{Server: f.server, CAData: ca, Token: token}
	started := time.Now()
	opts := f.options(streams, f.namespace, name, started)
	var authenticated func(string)
	if f.output == "text" {
		authenticated = func(user string) { _, _ = fmt.Fprintf(streams.ErrOut, "authenticated as %s\n", user) }
	}
	user, res, err := oidc.Deploy(cmd.Context(), target, rendered.Objects, opts, authenticated)
	if user == "" && err != nil && f.output == "text" {
		return err // the token was refused: nothing was applied, nothing to print
	}
	if perr := f.printResult(streams, res, map[string]any{"user": user}, fmt.Sprintf("namespace %s, inventory %s, as %s", f.namespace, name, user), started); perr != nil {
		return perr
	}
	return err
}

package cli

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/keyless-cd/keyless/internal/oidc"
)

type tokenFlags struct {
	provider string
	audience string
	fromEnv  string
}

func (f *tokenFlags) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.provider, "provider", "auto", "gitlab (id_tokens variable), github (requested now) or auto")
	cmd.Flags().StringVar(&f.audience, "audience", "", "audience to request from GitHub (the policy issuer's audience)")
	cmd.Flags().StringVar(&f.fromEnv, "from-env", "K8S_TOKEN", "GitLab: the id_tokens variable holding the token")
}

func (f *tokenFlags) source() oidc.TokenSource {
	return oidc.TokenSource{Provider: f.provider, Audience: f.audience, FromEnv: f.fromEnv, Getenv: os.Getenv}
}

func newOIDCTokenCommand(streams IOStreams) *cobra.Command {
	f := &tokenFlags{}
	cmd := &cobra.Command{
		Use:   "token [--provider gitlab|github|auto] [--audience A]",
		Short: "Print the CI job's OIDC token as a kubectl exec credential",
		Long: `Print a client.authentication.k8s.io/v1 ExecCredential holding the job's token, with
expirationTimestamp from its exp claim, so kubectl (and keyless kubeconfig) can use it
as an exec plugin. GitLab: the id_tokens variable (--from-env). GitHub: requested from
ACTIONS_ID_TOKEN_REQUEST_URL at call time, so long jobs never hold an expired token.`,
		Example: `  keyless oidc token --provider github --audience k8s-prod`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tok, err := f.source().Token(cmd.Context())
			if err != nil {
				return err
			}
			out, err := oidc.ExecCredential(tok)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(streams.Out, string(out))
			return err
		},
	}
	f.addFlags(cmd)
	return cmd
}

type kubeconfigFlags struct {
	tokenFlags
	server    string
	caFile    string
	namespace string
	output    string
	command   string
}

func newKubeconfigCommand(streams IOStreams) *cobra.Command {
	f := &kubeconfigFlags{}
	cmd := &cobra.Command{
		Use:   "kubeconfig --server URL --certificate-authority F --namespace NS",
		Short: "Write a kubeconfig whose user is the CI job's OIDC token (no secret inside)",
		Long: `Write a kubeconfig for CI jobs: the cluster's CA is embedded, and the user is an
exec plugin ("keyless oidc token") that hands over the job's short-lived token on
every call. No credential is stored in the file.`,
		Example: `  keyless kubeconfig --server https://k8s.example.com:6443 --certificate-authority ca.pem \
    --namespace myapp --provider github --audience k8s-prod -o kubeconfig
  KUBECONFIG=kubeconfig kubectl rollout status deployment/myapp`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if f.server == "" || f.caFile == "" || f.namespace == "" {
				return fmt.Errorf("--server, --certificate-authority and --namespace are required")
			}
			ca, err := os.ReadFile(f.caFile)
			if err != nil {
				return fmt.Errorf("--certificate-authority: %w", err)
			}
			args := []string{"oidc", "token", "--provider", f.provider, "--from-env", f.fromEnv}
			if f.audience != "" {
				args = append(args, "--audience", f.audience)
			}
			kc := clientcmdapi.NewConfig()
			kc.Clusters["cluster"] = &clientcmdapi.Cluster{Server: f.server, CertificateAuthorityData: ca}
			kc.AuthInfos["ci-job"] = &clientcmdapi.AuthInfo{Exec: &clientcmdapi.ExecConfig{
				APIVersion: "client.authentication.k8s.io/v1", Command: f.command, Args: args,
				InteractiveMode: clientcmdapi.NeverExecInteractiveMode,
			}}
			kc.Contexts["ci"] = &clientcmdapi.Context{Cluster: "cluster", AuthInfo: "ci-job", Namespace: f.namespace}
			kc.CurrentContext = "ci"
			data, err := clientcmd.Write(*kc)
			if err != nil {
				return err
			}
			if f.output == "" || f.output == "-" {
				_, err = streams.Out.Write(data)
				return err
			}
			if err := os.MkdirAll(filepath.Dir(f.output), 0o755); err != nil {
				return err
			}
			return os.WriteFile(f.output, data, 0o600)
		},
	}
	f.addFlags(cmd)
	cmd.Flags().StringVar(&f.server, "server", "", "API server URL")
	cmd.Flags().StringVar(&f.caFile, "certificate-authority", "", "PEM file of the cluster CA")
	cmd.Flags().StringVar(&f.namespace, "namespace", "", "the context's namespace")
	cmd.Flags().StringVarP(&f.output, "output", "o", "-", "file to write (default stdout)")
	cmd.Flags().StringVar(&f.command, "command", "keyless", "the keyless executable the plugin runs")
	return cmd
}

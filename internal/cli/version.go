package cli

import (
	"encoding/json"
	"fmt"
	"runtime"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/keyless-cd/keyless/internal/check"
	"github.com/keyless-cd/keyless/internal/install"
	"github.com/keyless-cd/keyless/internal/version"
)

type versionFlags struct {
	kubeFlags
	output              string
	client              bool
	controllerNamespace string
}

// versionServerTimeout bounds each read of the cluster's versions unless
// --request-timeout is given.
const versionServerTimeout = 5 * time.Second

// versionInfo is `keyless version -o json`.
type versionInfo struct {
	Keyless    string `json:"keyless"`
	Kubernetes string `json:"kubernetes"`
	Go         string `json:"go"`
	Platform   string `json:"platform"`
	// Controller and CRD are the cluster's (omitted with --client, or when
	// they cannot be read: ServerError says why).
	Controller  string   `json:"controller,omitempty"`
	CRD         string   `json:"crd,omitempty"`
	ServerError string   `json:"serverError,omitempty"`
	Warnings    []string `json:"warnings,omitempty"`
}

func newVersionCommand(streams IOStreams) *cobra.Command {
	f := &versionFlags{}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the client's, the controller's and the CRD's keyless versions, and warn on skew",
		Long: `Print this CLI's version and the Kubernetes version it is tested against, then the
versions keyless install recorded on the cluster's controller Deployment and
Application CRD (app.kubernetes.io/version), with a warning when they are not
the same minor release as this CLI (as kubectl version does). --client prints
the client's only and needs no cluster. keyless --version prints the client's
version alone.`,
		Example: `  keyless version
  keyless version --client
  keyless version -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runVersion(cmd, streams, f)
		},
	}
	f.addKubeconfigFlags(cmd.Flags())
	cmd.Flags().StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	cmd.Flags().BoolVar(&f.client, "client", false, "print the client's version only (no cluster needed)")
	cmd.Flags().StringVar(&f.controllerNamespace, "controller-namespace", install.DefaultControllerNamespace, "the controller's namespace")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func runVersion(cmd *cobra.Command, streams IOStreams, f *versionFlags) error {
	if f.output != "text" && f.output != "json" && f.output != "" {
		return fmt.Errorf("--output %q: want text or json", f.output)
	}
	info := versionInfo{Keyless: version.Version(), Kubernetes: version.KubernetesVersion(), Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if !f.client {
		if err := serverVersions(cmd, f, &info); err != nil {
			info.ServerError = err.Error()
		}
	}
	if f.output == "json" {
		enc := json.NewEncoder(streams.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(info)
	}
	_, err := fmt.Fprintf(streams.Out, "keyless %s\nkubernetes %s (local control plane and client)\ngo %s %s\n", info.Keyless, info.Kubernetes, info.Go, info.Platform)
	if err != nil || f.client {
		return err
	}
	if info.ServerError != "" {
		_, _ = fmt.Fprintf(streams.ErrOut, "cluster: %s\n", info.ServerError)
	}
	if info.Controller != "" {
		_, _ = fmt.Fprintf(streams.Out, "controller %s\n", info.Controller)
	}
	if info.CRD != "" {
		_, _ = fmt.Fprintf(streams.Out, "crd %s\n", info.CRD)
	}
	for _, w := range info.Warnings {
		_, _ = fmt.Fprintf(streams.ErrOut, "WARNING: %s\n", w)
	}
	return nil
}

// serverVersions fills in the cluster's controller and CRD versions and the
// skew warnings.
func serverVersions(cmd *cobra.Command, f *versionFlags, info *versionInfo) error {
	cfg, err := f.restConfig()
	if err != nil {
		return err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = versionServerTimeout // an unreachable cluster must not hang `keyless version`
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	info.Controller, info.CRD, err = check.ClusterVersions(cmd.Context(), cs, dyn, f.controllerNamespace)
	for _, s := range []struct{ what, v string }{{"controller", info.Controller}, {"CRD", info.CRD}} {
		if w := version.Skew(info.Keyless, s.what, s.v); w != "" {
			info.Warnings = append(info.Warnings, w)
		}
	}
	return err
}

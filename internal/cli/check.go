package cli

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/keyless-cd/keyless/internal/check"
	"github.com/keyless-cd/keyless/internal/install"
)

type checkFlags struct {
	kubeFlags
	pre                 bool
	controllerNamespace string
	output              string
}

// errChecksFailed is returned when a check failed (the report says which).
var errChecksFailed = errors.New("some checks failed")

func newCheckCommand(streams IOStreams) *cobra.Command {
	f := &checkFlags{}
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check a cluster before installing keyless (--pre), or check an install",
		Long: `Check, as flux check does, with your own kubeconfig (nothing is written):

With --pre, before an install: the API server's Kubernetes version (1.30 or
later), whether you may write what keyless install writes (the CRD, namespaces,
the controller's objects and Roles; SelfSubjectAccessReview), and how Pod
Security treats the controller's namespace.

Without it, an install: the Application CRD established and its version, the
controller Deployment's available replicas and version (a different minor
release than this CLI is a warning), a replica holding each leader Lease and
renewing it, ready endpoints behind the webhook port, and in each managed
namespace the controller's Role and the keyless-deployer it impersonates.

Exits 1 when a check failed; warnings do not fail.`,
		Example: `  # before keyless install, as the cluster admin who will run it
  keyless check --pre

  # after it
  keyless check
  keyless check -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCheck(cmd, streams, f)
		},
	}
	f.addKubeconfigFlags(cmd.Flags())
	cmd.Flags().BoolVar(&f.pre, "pre", false, "check the cluster and your permissions before an install")
	cmd.Flags().StringVar(&f.controllerNamespace, "controller-namespace", install.DefaultControllerNamespace, "the controller's namespace")
	cmd.Flags().StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func runCheck(cmd *cobra.Command, streams IOStreams, f *checkFlags) error {
	if f.output != "text" && f.output != "json" {
		return fmt.Errorf("--output %q: want text or json", f.output)
	}
	cfg, err := f.restConfig()
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	opts := check.Options{ControllerNamespace: f.controllerNamespace}
	var report *check.Report
	if f.pre {
		report = check.Pre(cmd.Context(), cs, opts)
	} else {
		dyn, err := dynamic.NewForConfig(cfg)
		if err != nil {
			return err
		}
		report = check.Installed(cmd.Context(), cs, dyn, opts)
	}
	if f.output == "json" {
		enc := json.NewEncoder(streams.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			return err
		}
	} else if err := report.Print(streams.Out); err != nil {
		return err
	}
	if report.Failed() {
		return errChecksFailed
	}
	return nil
}

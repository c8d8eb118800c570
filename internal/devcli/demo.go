package devcli

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyless-cd/keyless/internal/cli"
	"github.com/keyless-cd/keyless/internal/demo"
	"github.com/keyless-cd/keyless/internal/localcluster"
)

type demoFlags struct {
	assets      string
	dir         string
	keep        bool
	stepTimeout time.Duration
}

func newDemoCommand(streams cli.IOStreams) *cobra.Command {
	f := &demoFlags{}
	cmd := &cobra.Command{
		Use:   "demo [--keep]",
		Short: "Run the whole credential-free pipeline on this machine, end to end",
		Long: `Start everything on loopback — a local control plane (etcd, kube-apiserver,
controller-manager, scheduler, kwok), a Git server holding a small Helm chart, a
GitLab-shaped CI OIDC issuer, keyless's CRD and namespaced install, and the
controller running as its ServiceAccount with namespaced Roles only — then walk
through the seed documents' story, each step checked and timed with its evidence:

  1. the seed's Argo CD Application, converted by keyless import argocd → Synced/Healthy
  2. CI runs keyless bump (GitLab job environment) → webhook → new version running
  3. someone kubectl-edits the Deployment → reverted
  4. a file removed in Git → pruned; an empty render → refused, nothing pruned
  5. keyless oidc config/rbac; a main-branch job token runs keyless deploy of a
     migration Job; a feature-branch token and an expired token are refused
  6. keyless audit repo flags a pipeline storing a kubeconfig; the demo repo and
     the cluster are clean
  7. keyless get apps and keyless history show who did what

It ends with a summary table and exits 0 only if every step passed. Without
--keep everything is stopped and removed at the end (after a failure the files
stay, for their logs, and their folder is printed); with --keep it stays up
and the KUBECONFIG, repository, webhook and issuer are printed to explore until
Ctrl-C. Ctrl-C at any point stops everything and cleans up.

The control-plane binaries come from --assets, else $KUBEBUILDER_ASSETS, else
./bin/k8s (make k8s-bins builds them; make demo does both).`,
		Example: `  make demo                     # builds what is missing, then runs keyless-dev demo
  keyless-dev demo --keep           # leave it running to explore; Ctrl-C cleans up
  keyless-dev demo --assets /opt/k8s/bin`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd.Context(), streams, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.assets, "assets", "", "folder with etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok (default $KUBEBUILDER_ASSETS, else ./bin/k8s)")
	fl.StringVar(&f.dir, "dir", "", "folder for everything the demo writes, kept afterwards (default a temporary folder, removed)")
	fl.BoolVar(&f.keep, "keep", false, "leave everything running after the steps and print how to explore it; Ctrl-C cleans up")
	fl.DurationVar(&f.stepTimeout, "step-timeout", 2*time.Minute, "longest wait of any one step")
	return cmd
}

func runDemo(ctx context.Context, streams cli.IOStreams, f *demoFlags) error {
	assets := localcluster.ResolveAssets(f.assets)
	if err := localcluster.CheckAssets(assets); err != nil {
		return &cli.ExitError{Code: 2, Err: err}
	}
	_, err := demo.Run(ctx, demo.Options{
		Out: streams.Out, Keyless: cli.InProcess, Assets: assets, Dir: f.dir, Keep: f.keep, StepTimeout: f.stepTimeout,
		Command: keylessBeside(os.Args[0]), DevCommand: os.Args[0],
	})
	if errors.Is(err, demo.ErrFailed) {
		return &cli.ExitError{Code: 1}
	}
	return err
}

// keylessBeside names the keyless binary next to keyless-dev (make builds
// both into bin/), for the demo's hints; "keyless" when there is none.
func keylessBeside(devCommand string) string {
	k := filepath.Join(filepath.Dir(devCommand), "keyless")
	if fi, err := os.Stat(k); err == nil && !fi.IsDir() {
		return k
	}
	return "keyless"
}

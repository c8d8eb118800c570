package devcli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyless-cd/keyless/internal/cli"
	"github.com/keyless-cd/keyless/internal/localcluster"
)

func newLocalclusterCommand(streams cli.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "localcluster",
		Short: "Run a real local Kubernetes control plane (etcd, apiserver, controllers, kwok node)",
	}
	cmd.AddCommand(newLocalclusterUpCommand(streams))
	return cmd
}

type localclusterUpFlags struct {
	assets        string
	stateDir      string
	kubeconfigOut string
	apiserverArgs []string
	timeout       time.Duration
}

func newLocalclusterUpCommand(streams cli.IOStreams) *cobra.Command {
	f := &localclusterUpFlags{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start the local control plane and keep it running until Ctrl-C",
		Long: `Start etcd, kube-apiserver (RBAC on), kube-controller-manager, kube-scheduler and
kwok with one fake node (kwok-node-0) on free 127.0.0.1 ports. When the API is ready
and the node is Ready it prints one line

  ready: KUBECONFIG=<path>

and runs until SIGINT/SIGTERM, then stops every process it started and says where
the logs are. The kubeconfig is an admin (system:masters) one, carrying the cluster
CA; treat it as a secret and never copy it into CI.

The binaries come from --assets, else $KUBEBUILDER_ASSETS, else ./bin/k8s
(build them with "make k8s-bins").`,
		Example: `  # start a cluster and use it from another terminal
  keyless-dev localcluster up --kubeconfig-out /tmp/kl.kubeconfig
  kubectl --kubeconfig /tmp/kl.kubeconfig get nodes

  # pass extra kube-apiserver flags (repeatable)
  keyless-dev localcluster up --apiserver-arg=--authentication-config=/etc/keyless/authn.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runLocalclusterUp(cmd, streams, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.assets, "assets", "", "folder with etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok (default $KUBEBUILDER_ASSETS, else ./bin/k8s)")
	fl.StringVar(&f.stateDir, "state-dir", "", "folder for certificates, etcd data, kubeconfigs and logs (default a new temp dir)")
	fl.StringVar(&f.kubeconfigOut, "kubeconfig-out", "", "where to write the admin kubeconfig (default <state-dir>/kubeconfig)")
	fl.StringArrayVar(&f.apiserverArgs, "apiserver-arg", nil, "extra kube-apiserver flag, e.g. --apiserver-arg=--audit-log-path=/tmp/audit.log (repeatable)")
	fl.DurationVar(&f.timeout, "timeout", 2*time.Minute, "how long to wait for the cluster to become ready")
	return cmd
}

func runLocalclusterUp(cmd *cobra.Command, streams cli.IOStreams, f *localclusterUpFlags) error {
	ctx := cmd.Context()
	c, err := localcluster.Start(ctx, localcluster.Options{
		Assets:        f.assets,
		StateDir:      f.stateDir,
		KubeconfigOut: f.kubeconfigOut,
		APIServerArgs: f.apiserverArgs,
		Progress:      streams.ErrOut,
		ReadyTimeout:  f.timeout,
	})
	if err != nil {
		return fmt.Errorf("starting local cluster: %w", err)
	}
	defer func() {
		c.Stop()
		_, _ = fmt.Fprintf(streams.ErrOut, "stopped all processes; logs are in %s\n", c.LogDir)
	}()
	_, _ = fmt.Fprintf(streams.Out, "ready: KUBECONFIG=%s\n", c.KubeconfigPath)
	_, _ = fmt.Fprintf(streams.ErrOut, "  try: kubectl --kubeconfig %s get nodes\n  press Ctrl-C to stop\n", c.KubeconfigPath)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			_, _ = fmt.Fprintln(streams.ErrOut, "stopping the local cluster ...")
			return nil
		case <-tick.C:
			if exited := c.Exited(); len(exited) > 0 {
				return fmt.Errorf("%s exited unexpectedly; see the logs in %s", strings.Join(exited, ", "), c.LogDir)
			}
		}
	}
}

// Package devcli holds keyless-dev's commands: the machinery for trying and
// testing keyless on one machine (a local control plane, a CI token issuer,
// the end-to-end demo). It is kept out of the product binary: cmd/keyless
// never imports it (cmd/keyless/deps_test.go checks), so the controller image does not carry a control plane
// runner, a Git test server or a token minter.
package devcli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/keyless-cd/keyless/internal/cli"
)

// NewRootCommand builds the keyless-dev command tree.
func NewRootCommand(streams cli.IOStreams) *cobra.Command {
	root := &cobra.Command{
		Use:   "keyless-dev",
		Short: "Try and test keyless on one machine: a local control plane, a CI token issuer, the demo",
		Long: `keyless-dev holds what a developer needs to try keyless on one machine and what
its tests run against, kept out of the keyless binary and its image:

  localcluster  a real Kubernetes control plane on loopback (etcd, kube-apiserver,
                controller-manager, scheduler, kwok)
  dev-issuer    a throwaway OIDC issuer minting GitLab/GitHub-shaped CI tokens
  demo          the whole credential-free pipeline, end to end

make cluster and make demo build it into bin/keyless-dev and run it.`,
	}
	cli.WireRoot(root, streams)
	root.AddCommand(
		newLocalclusterCommand(streams),
		newDevIssuerCommand(streams),
		newDemoCommand(streams),
	)
	return root
}

// Run executes a keyless-dev command line with ctx and returns the exit code.
func Run(ctx context.Context, args []string, streams cli.IOStreams) int {
	return cli.Execute(ctx, NewRootCommand(streams), args, streams)
}

package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

type applyFlags struct {
	kubeFlags
	renderFlags
	convergeFlags
}

func newApplyCommand(streams IOStreams) *cobra.Command {
	f := &applyFlags{}
	cmd := &cobra.Command{
		Use:   "apply DIR -n NAMESPACE",
		Short: "Converge a namespace to what a directory renders (server-side apply, prune, wait)",
		Long: `Render DIR (plain YAML, kustomize or Helm) and converge the namespace to it:

  1. guards: every object must be namespaced and in NAMESPACE (objects without a
     namespace get it); cluster-scoped objects and other namespaces are refused,
     all listed, and nothing is written. An empty render is refused unless
     --allow-empty, so a broken checkout never prunes everything.
  2. a server-side dry-run of the whole set: one invalid object means nothing is
     changed.
  3. server-side apply (field manager "keyless") of what differs; objects are
     labelled app.kubernetes.io/managed-by=keyless and keyless.dev/inventory=NAME.
  4. with --prune, objects of the last apply that left the render are deleted,
     except those annotated keyless.dev/prune: disabled. The inventory lives in
     the ConfigMap keyless-inventory-NAME.
  5. with --wait, kstatus waits until every object is Current, printing progress,
     and reports why an object failed.

An unchanged render makes no write at all.`,
		Example: `  keyless apply deploy/ -n myapp --prune --wait 2m
  keyless apply charts/myapp -n myapp --helm-values values/prod.yml --dry-run
  keyless apply examples/plain -n demo --prune --wait 1m -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runApply(cmd, streams, f, args[0])
		},
	}
	f.kubeFlags.addFlags(cmd.Flags())
	f.renderFlags.addFlags(cmd.Flags())
	f.convergeFlags.addFlags(cmd.Flags())
	return cmd
}

func runApply(cmd *cobra.Command, streams IOStreams, f *applyFlags, dir string) error {
	t, err := prepareTarget(cmd, &f.kubeFlags, &f.renderFlags, f.name, f.output, dir)
	if err != nil {
		return err
	}
	started := time.Now()
	opts := f.options(streams, t.namespace, t.name, started)
	opts.TrustRBAC = true // a person's own identity: the API server's RBAC checks on it decide
	res, applyErr := t.engine.Apply(cmd.Context(), t.rendered.Objects, opts)
	if err := f.printResult(streams, res, nil, fmt.Sprintf("namespace %s, inventory %s", t.namespace, t.name), started); err != nil {
		return err
	}
	return applyErr
}

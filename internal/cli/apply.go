package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyless-cd/keyless/internal/engine"
)

type applyFlags struct {
	kubeFlags
	renderFlags
	name       string
	prune      bool
	allowEmpty bool
	wait       time.Duration
	dryRun     bool
	output     string
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
	fl := cmd.Flags()
	fl.StringVar(&f.name, "name", "", "inventory name, used to find what to prune (default DIR's base name)")
	fl.BoolVar(&f.prune, "prune", false, "delete objects of the last apply that are no longer rendered")
	fl.BoolVar(&f.allowEmpty, "allow-empty", false, "allow an empty render (with --prune it deletes everything of this inventory)")
	fl.DurationVar(&f.wait, "wait", 0, "wait up to this long for every object to be ready (e.g. 2m; 0 = do not wait)")
	fl.BoolVar(&f.dryRun, "dry-run", false, "show what would change (server-side dry-run) and write nothing")
	fl.StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	return cmd
}

func runApply(cmd *cobra.Command, streams IOStreams, f *applyFlags, dir string) error {
	t, err := prepareTarget(cmd, &f.kubeFlags, &f.renderFlags, f.name, f.output, dir)
	if err != nil {
		return err
	}
	ns, name, e, rendered := t.namespace, t.name, t.engine, t.rendered
	text := f.output == "text"
	opts := engine.ApplyOptions{Namespace: ns, Name: name, Prune: f.prune, AllowEmpty: f.allowEmpty, DryRun: f.dryRun, Wait: f.wait}
	started := time.Now()
	if text && f.wait > 0 {
		opts.Progress = func(s engine.ObjectStatus) {
			_, _ = fmt.Fprintf(streams.ErrOut, "  %6.1fs %s\n", time.Since(started).Seconds(), s)
		}
	}
	res, applyErr := e.Apply(cmd.Context(), rendered.Objects, opts)
	if res != nil {
		if f.output == "json" {
			if err := writeJSON(streams.Out, res); err != nil {
				return err
			}
		} else {
			suffix := ""
			if f.dryRun {
				suffix = " (dry run)"
				for _, c := range res.Changes {
					_, _ = fmt.Fprint(streams.Out, c.Diff)
				}
			}
			printChanges(streams.Out, res, suffix)
			_, _ = fmt.Fprintf(streams.Out, "namespace %s, inventory %s: %s in %s\n", ns, name, summary(res), time.Since(started).Round(time.Millisecond))
		}
	}
	return applyErr
}

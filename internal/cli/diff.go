package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/keyless-cd/keyless/internal/engine"
)

type diffFlags struct {
	kubeFlags
	renderFlags
	name       string
	prune      bool
	allowEmpty bool
	output     string
}

func newDiffCommand(streams IOStreams) *cobra.Command {
	f := &diffFlags{}
	cmd := &cobra.Command{
		Use:   "diff DIR -n NAMESPACE",
		Short: "Show what apply would change, using a server-side dry-run",
		Long: `Render DIR and compare it with the namespace, using a server-side dry-run per
object, so admission and validation errors show here as they would on apply.
Prints a unified YAML diff for each object that would be created or configured
(status and server-set fields left out, Secret values masked) and lists objects
of the last apply that left the render. Nothing is written.

Exit status, as kubectl diff: 0 no changes, 1 changes, 2 error.`,
		Example: `  keyless diff deploy/ -n myapp
  keyless diff charts/myapp -n myapp --helm-values values/prod.yml --name myapp`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return errorExits2(runDiff(cmd, streams, f, args[0]))
		},
	}
	f.kubeFlags.addFlags(cmd.Flags())
	f.renderFlags.addFlags(cmd.Flags())
	cmd.Flags().StringVar(&f.name, "name", "", "inventory name: what apply recorded last time (default DIR's base name)")
	cmd.Flags().BoolVar(&f.prune, "prune", false, "show objects that apply --prune would delete as deletions")
	cmd.Flags().BoolVar(&f.allowEmpty, "allow-empty", false, "allow an empty render")
	cmd.Flags().StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	return cmd
}

func runDiff(cmd *cobra.Command, streams IOStreams, f *diffFlags, dir string) error {
	t, err := prepareTarget(cmd, &f.kubeFlags, &f.renderFlags, f.name, f.output, dir)
	if err != nil {
		return err
	}
	ns, name, e, rendered := t.namespace, t.name, t.engine, t.rendered
	res, err := e.Diff(cmd.Context(), rendered.Objects, engine.DiffOptions{Namespace: ns, Name: name, Prune: f.prune, AllowEmpty: f.allowEmpty, TrustRBAC: true})
	if err != nil {
		return err
	}
	if f.output == "json" {
		if err := writeJSON(streams.Out, res); err != nil {
			return err
		}
	} else {
		for _, c := range res.Changes {
			if c.Diff != "" {
				_, _ = fmt.Fprint(streams.Out, c.Diff)
			}
		}
		printChanges(streams.ErrOut, res, " (dry run)")
		_, _ = fmt.Fprintf(streams.ErrOut, "namespace %s, inventory %s: %s\n", ns, name, summary(res))
	}
	if res.Changed() {
		return &ExitError{Code: 1}
	}
	return nil
}

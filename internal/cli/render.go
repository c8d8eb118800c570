package cli

import (
	"fmt"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"
)

type renderCmdFlags struct {
	renderFlags
	namespace string
}

func newRenderCommand(streams IOStreams) *cobra.Command {
	f := &renderCmdFlags{}
	cmd := &cobra.Command{
		Use:   "render DIR",
		Short: "Print the objects a directory renders to (plain YAML, kustomize or Helm)",
		Long: `Render DIR the way diff, apply and the controller do, and print the objects as
a YAML stream, each preceded by a comment naming its source. DIR holding Chart.yaml
is a Helm chart (rendered like "helm template"), DIR holding kustomization.yaml is
built in-process with kustomize, anything else is read as plain manifests
(*.yaml, *.yml, *.json, recursively, hidden folders skipped). Nothing outside the
repository root is read. No cluster is contacted.`,
		Example: `  keyless render deploy/
  keyless render charts/myapp --helm-values values/prod.yml --helm-set image.tag=abc123 -n myapp`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRender(cmd, streams, f, args[0])
		},
	}
	f.addFlags(cmd.Flags())
	cmd.Flags().StringVarP(&f.namespace, "namespace", "n", "", "namespace to render for (Helm's .Release.Namespace)")
	return cmd
}

func runRender(cmd *cobra.Command, streams IOStreams, f *renderCmdFlags, dir string) error {
	res, err := f.render(cmd.Context(), dir, f.namespace)
	if err != nil {
		return err
	}
	for _, o := range res.Objects {
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			return fmt.Errorf("%s/%s: %w", o.GetKind(), o.GetName(), err)
		}
		if _, err := fmt.Fprintf(streams.Out, "---\n# Source: %s\n%s", res.Source(o), b); err != nil {
			return err
		}
	}
	_, err = fmt.Fprintf(streams.ErrOut, "rendered %d objects (%s)\n", len(res.Objects), res.Kind)
	return err
}

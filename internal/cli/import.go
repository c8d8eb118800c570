package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/keyless-cd/keyless/internal/argocd"
)

func newImportCommand(streams IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Convert other tools' resources into keyless ones",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "argocd FILE|-",
		Short: "Convert an Argo CD Application, or argocd-cm's Lua health checks, into keyless",
		Long: `Read one argoproj.io/v1alpha1 Application and print the keyless Application.
Field names are the same; spec.destination.namespace becomes the Application's own
namespace. Charts from Helm repositories and OCI registries (Argo CD's scheme-less
OCI repoURL becomes oci://) and spec.sources with one rendered source and Git ref
sources ($ref/path values files) are carried over. What keyless does not support
(projects, ignoreDifferences, sync options such as CreateNamespace, inline Helm
values, several rendered sources, other clusters) is listed on stderr as a warning
or refused; nothing is dropped silently.

Given Argo CD's argocd-cm ConfigMap instead, read its Lua health customisations
(resource.customizations.health.<group>_<kind>, or health.lua in
resource.customizations) and print a YAML list for --health-check-exprs (or an
Application's spec.healthCheckExprs): kinds the built-in CEL library judges need
nothing; Lua of a shape that maps safely (a condition's type and status, or
status.phase, decides) is converted; anything else becomes a skeleton entry with a
TODO and the Lua as comments, refused until its expressions are written. What was
covered, converted or not is said on stderr.`,
		Example: `  keyless import argocd argocd-app.yaml > app.yaml
  kubectl get application myapp -n argocd -o yaml | keyless import argocd - | kubectl apply -f -
  kubectl get configmap argocd-cm -n argocd -o yaml | keyless import argocd - > health.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return runImportArgoCD(streams, args[0])
		},
	})
	return cmd
}

func runImportArgoCD(streams IOStreams, path string) error {
	r := streams.In
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer func() { _ = f.Close() }()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, argocd.MaxInput+1))
	if err != nil {
		return err
	}
	if argocd.IsConfigMap(data) {
		return importArgoCDHealth(streams, path, data)
	}
	res, err := argocd.Convert(data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, w := range res.Warnings {
		_, _ = fmt.Fprintf(streams.ErrOut, "warning: %s\n", w)
	}
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(res.Application)
	if err != nil {
		return err
	}
	delete(obj, "status")
	unstructured.RemoveNestedField(obj, "metadata", "creationTimestamp")
	out, err := yaml.Marshal(obj)
	if err != nil {
		return err
	}
	_, err = streams.Out.Write(out)
	return err
}

// importArgoCDHealth prints argocd-cm's Lua health customisations as
// --health-check-exprs entries, and on stderr what each became.
func importArgoCDHealth(streams IOStreams, path string, data []byte) error {
	res, err := argocd.ConvertHealth(data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, n := range res.Notes {
		_, _ = fmt.Fprintf(streams.ErrOut, "note: %s\n", n)
	}
	for _, w := range res.Warnings {
		_, _ = fmt.Fprintf(streams.ErrOut, "warning: %s\n", w)
	}
	_, err = streams.Out.Write(res.Entries)
	return err
}

package preview

import (
	"strings"
	"testing"
)

// FuzzDecodeApplications: whatever a repository's YAML holds, the search
// for Applications returns or reports, never panics, and every Application
// it returns has a name and a namespace.
func FuzzDecodeApplications(f *testing.F) {
	f.Add([]byte("apiVersion: keyless.dev/v1alpha1\nkind: Application\nmetadata: {name: a, namespace: b}\nspec: {source: {repoURL: x}}\n"))
	f.Add([]byte("apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: a}\nspec:\n  destination: {namespace: b}\n  source: {repoURL: x, helm: {parameters: [{name: a.b, value: c}]}}\n"))
	f.Add([]byte("kind: List\napiVersion: v1\nitems:\n- {apiVersion: keyless.dev/v1alpha1, kind: Application, metadata: {name: a}}\n---\n{{ .Values }}\n"))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		apps, warnings, err := decodeApplications("f.yaml", data)
		if err != nil && !strings.HasPrefix(err.Error(), "f.yaml") {
			t.Errorf("error does not name the file: %v", err)
		}
		for _, w := range warnings {
			if !strings.HasPrefix(w, "f.yaml:") {
				t.Errorf("warning does not name file:line: %s", w)
			}
		}
		for _, a := range apps {
			if a.app.Name == "" || a.app.Namespace == "" {
				t.Errorf("Application without name or namespace: %+v", a.app.ObjectMeta)
			}
		}
	})
}

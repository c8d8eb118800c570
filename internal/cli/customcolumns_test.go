package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kubectlget "k8s.io/kubectl/pkg/cmd/get"
)

// TestCustomColumnsPrintAsKubectl compares keyless's custom-columns
// printer with kubectl's own on the same objects and specs.
func TestCustomColumnsPrintAsKubectl(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "columns.txt")
	if err := os.WriteFile(file, []byte("NAME   REPO  PATHS\n.metadata.name  {.spec.source.repoURL}  {.spec.sources[*].path}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	obj := func(name, repo string, paths ...string) unstructured.Unstructured {
		sources := []any{}
		for _, p := range paths {
			sources = append(sources, map[string]any{"path": p})
		}
		spec := map[string]any{"source": map[string]any{"repoURL": repo}}
		if len(paths) > 0 {
			spec["sources"] = sources
		}
		return unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "keyless.dev/v1alpha1", "kind": "Application",
			"metadata": map[string]any{"name": name, "namespace": "team", "labels": map[string]any{"tier": "web"}},
			"spec":     spec,
		}}
	}
	list := &unstructured.UnstructuredList{Object: map[string]any{"apiVersion": "v1", "kind": "List"}}
	list.Items = []unstructured.Unstructured{
		obj("web", "https://git.example.com/a.git", "deploy/web", "deploy/extra"),
		obj("api-with-a-long-name", "https://git.example.com/b.git"),
		obj("escape", "https://git.example.com/\x1b[31mred.git"),
	}
	for _, tc := range []struct {
		format    string
		noHeaders bool
	}{
		{format: "custom-columns=NAME:.metadata.name,NS:metadata.namespace,TIER:{.metadata.labels.tier},REPO:{spec.source.repoURL}"},
		{format: "custom-columns=NAME:.metadata.name,MISSING:.status.sync.revision", noHeaders: true},
		{format: "custom-columns=PATHS:.spec.sources[*].path,FIRST:.spec.sources[0].path"},
		{format: "custom-columns-file=" + file},
		{format: "custom-columns-file=" + file, noHeaders: true},
	} {
		t.Run(tc.format, func(t *testing.T) {
			ours, err := newCustomColumnsPrinter(tc.format, tc.noHeaders)
			if err != nil {
				t.Fatal(err)
			}
			flags := kubectlget.NewCustomColumnsPrintFlags()
			flags.NoHeaders = tc.noHeaders
			theirs, err := flags.ToPrinter(tc.format)
			if err != nil {
				t.Fatal(err)
			}
			var got, want bytes.Buffer
			if err := ours.PrintObj(list, &got); err != nil {
				t.Fatal(err)
			}
			if err := theirs.PrintObj(list, &want); err != nil {
				t.Fatal(err)
			}
			if got.String() != want.String() {
				t.Errorf("keyless printed\n%s\nkubectl printed\n%s", got.String(), want.String())
			}
			// One object at a time (a watch): the header once.
			got.Reset()
			if ours, err = newCustomColumnsPrinter(tc.format, tc.noHeaders); err != nil {
				t.Fatal(err)
			}
			for i := range list.Items {
				if err := ours.PrintObj(&list.Items[i], &got); err != nil {
					t.Fatal(err)
				}
			}
			if n := strings.Count(got.String(), "NAME"); !tc.noHeaders && strings.Contains(tc.format, "NAME") && n != 1 {
				t.Errorf("a watch printed the header %d times:\n%s", n, got.String())
			}
		})
	}
}

func TestCustomColumnsErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "absent")
	short := filepath.Join(t.TempDir(), "short")
	if err := os.WriteFile(short, []byte("A B\n.a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for format, want := range map[string]string{
		"custom-columns=":                    "no custom columns given",
		"custom-columns=NAME":                "want <header>:<json-path-expr>",
		"custom-columns=NAME:{{.x}}":         "column path",
		"custom-columns=NAME:.a[":            "column NAME",
		"custom-columns-file=" + missing:     "no such file",
		"custom-columns-file=" + short:       "2 headers but 1 paths",
		"custom-columns-file=" + t.TempDir(): "missing the header line",
	} {
		_, err := newCustomColumnsPrinter(format, false)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error containing %q", format, err, want)
		}
	}
}

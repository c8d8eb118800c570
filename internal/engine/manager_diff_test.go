package engine

import (
	"strings"
	"testing"
)

func TestDiffReportsEachKindOfChange(t *testing.T) {
	ctx := t.Context()
	e := newEngine(t)
	ns := newNamespace(t)
	files := map[string]string{"a.yaml": configMap("a", "1"), "b.yaml": configMap("b", "1"), "gone.yaml": configMap("gone", "1")}
	if _, err := e.Apply(ctx, renderFiles(t, files), ApplyOptions{Namespace: ns, Name: "d"}); err != nil {
		t.Fatal(err)
	}
	before := len(adminWrites(t, ns))

	files["b.yaml"] = configMap("b", "2")
	files["new.yaml"] = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: new\nstringData:\n  password: hunter2\n"
	delete(files, "gone.yaml")
	res, err := e.Diff(ctx, renderFiles(t, files), DiffOptions{Namespace: ns, Name: "d", Prune: true})
	if err != nil {
		t.Fatal(err)
	}
	wantActions(t, res, map[string]Action{"ConfigMap/a": ActionUnchanged, "ConfigMap/b": ActionConfigured, "Secret/new": ActionCreated, "ConfigMap/gone": ActionPruned})
	for _, c := range res.Changes {
		switch c.Ref.String() {
		case "ConfigMap/b":
			if !strings.Contains(c.Diff, `-  value: "1"`) || !strings.Contains(c.Diff, `+  value: "2"`) {
				t.Errorf("diff of b:\n%s", c.Diff)
			}
			if strings.Contains(c.Diff, "managedFields") || strings.Contains(c.Diff, "resourceVersion") {
				t.Errorf("diff shows server-set fields:\n%s", c.Diff)
			}
		case "Secret/new":
			if strings.Contains(c.Diff, "hunter2") {
				t.Errorf("diff shows a secret value:\n%s", c.Diff)
			}
		case "ConfigMap/gone":
			if !strings.Contains(c.Diff, "-  name: gone") {
				t.Errorf("diff of pruned object:\n%s", c.Diff)
			}
		}
	}
	if !res.Changed() {
		t.Error("Changed() = false")
	}
	if after := len(adminWrites(t, ns)); after != before {
		t.Errorf("diff made %d writes", after-before)
	}
}

package engine

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
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

// TestUnifiedDiffMasksSecrets: neither side's value of a Secret ever shows;
// a changed key is marked, an unchanged one is not.
func TestUnifiedDiffMasksSecrets(t *testing.T) {
	sec := func(data map[string]any) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "db"}, "data": data,
		}}
	}
	from := sec(map[string]any{"password": "aHVudGVyMg==", "user": "YWRtaW4="})
	to := sec(map[string]any{"password": "Y29ycmVjdA==", "user": "YWRtaW4=", "token": "bmV3"})
	d, err := UnifiedDiff("live/secret/db", "desired/secret/db", from, to)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"aHVudGVyMg", "Y29ycmVjdA", "YWRtaW4", "bmV3"} {
		if strings.Contains(d, v) {
			t.Errorf("diff shows value %s:\n%s", v, d)
		}
	}
	for _, want := range []string{"-  password: '***'", "+  password: '*** (changed)'", "+  token: '***'", "   user: '***'"} {
		if !strings.Contains(d, want) {
			t.Errorf("diff lacks %q:\n%s", want, d)
		}
	}
	if d, _ := UnifiedDiff("a", "b", from, from.DeepCopy()); d != "" {
		t.Errorf("an unchanged Secret diffs:\n%s", d)
	}
}

// TestUnifiedDiffLastLine: a change to an object's last line is two whole
// lines, and the diff ends in a newline, so diffs of several objects
// joined one after another stay apart.
func TestUnifiedDiffLastLine(t *testing.T) {
	obj := func(verbs ...any) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
			"metadata": map[string]any{"name": "r"}, "rules": []any{map[string]any{"apiGroups": []any{""}, "resources": []any{"pods"}, "verbs": verbs}}}}
	}
	d, err := UnifiedDiff("a", "b", obj("get"), obj("get", "watch"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(d, "\n") || !strings.Contains(d, "\n+  - watch\n") || strings.Contains(d, "get+") || strings.Contains(d, "get-") {
		t.Fatalf("diff of the last line:\n%q", d)
	}
}

package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRenderListsRefusedObjects: keyless render lists on stderr every
// object keyless's guards would refuse, with its source, after printing
// them all; it exits 0 unless --check.
func TestRenderListsRefusedObjects(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"fine.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fine\n",
		"cr.yaml":    "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: everything\nrules: []\n",
		"crd.yaml":   "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.example.com\nspec:\n  group: example.com\n  scope: Namespaced\n  names: {kind: Widget, plural: widgets}\n",
		"other.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: sneaky\n  namespace: kube-system\n",
	})
	wantReport := []string{
		"3 objects would be refused by keyless apply and the controller; nothing of this render would be applied:\n",
		"  ClusterRole/everything — cluster-scoped objects are not allowed; an application deploys into namespace \"shop\" only (ask a cluster admin to manage it) — cr.yaml:1\n",
		"  CustomResourceDefinition/widgets.example.com — cluster-scoped",
		"  ConfigMap/sneaky (namespace kube-system) — names namespace \"kube-system\"; an application deploys into namespace \"shop\" only — other.yaml:1\n",
	}

	code, out, errOut := run(t.Context(), t, "render", dir, "--root", dir, "-n", "shop")
	if code != 0 {
		t.Fatalf("exit %d, want 0 without --check: %s", code, errOut)
	}
	for _, name := range []string{"name: fine", "name: everything", "name: sneaky"} {
		if !strings.Contains(out, name) {
			t.Errorf("stdout lacks %q: the objects are still printed", name)
		}
	}
	for _, want := range wantReport {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "ConfigMap/fine") || strings.Contains(out, "would be refused") {
		t.Errorf("report names an object that passes, or went to stdout:\n%s", errOut)
	}

	code, _, errOut = run(t.Context(), t, "render", dir, "--root", dir, "-n", "shop", "--check")
	if code != 1 || !strings.Contains(errOut, wantReport[1]) || !strings.Contains(errOut, "Error: objects refused: 3 objects (--check)") {
		t.Errorf("--check: exit %d, want 1 with the report:\n%s", code, errOut)
	}
	if code, _, errOut := run(t.Context(), t, "render", dir, "--root", dir, "--check"); code != 1 || !strings.Contains(errOut, "--check needs -n") {
		t.Errorf("--check without -n: exit %d: %s", code, errOut)
	}
	if code, _, errOut := run(t.Context(), t, "render", dir, "--root", dir); code != 0 || !strings.Contains(errOut, "pass -n NAMESPACE to list") {
		t.Errorf("without -n: exit %d, want 0 and a hint: %s", code, errOut)
	}

	// Nothing refused: no report, and --check passes.
	for _, name := range []string{"cr.yaml", "crd.yaml", "other.yaml"} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if code, _, errOut := run(t.Context(), t, "render", dir, "--root", dir, "-n", "shop", "--check"); code != 0 || strings.Contains(errOut, "refused") {
		t.Errorf("a render keyless accepts: exit %d: %s", code, errOut)
	}
}

package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/keyless-cd/keyless/internal/engine"
	"github.com/keyless-cd/keyless/internal/localcluster"
	"github.com/keyless-cd/keyless/internal/localcluster/clustertest"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDiffAndApplyCommands drives diff and apply as a person would, against a
// real local cluster, checking exit codes and output.
func TestDiffAndApplyCommands(t *testing.T) {
	c := clustertest.Start(t, localcluster.Options{})
	cs := kubernetes.NewForConfigOrDie(c.Config)
	if _, err := cs.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kc := "--kubeconfig=" + c.KubeconfigPath
	app := filepath.Join(t.TempDir(), "myapp")
	writeFiles(t, app, map[string]string{
		"cm.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  color: blue\n",
		"old.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: old\n",
	})

	// Nothing applied yet: diff shows creations, exit 1.
	code, out, errOut := run(t.Context(), t, "diff", app, "-n", "demo", kc)
	if code != 1 || !strings.Contains(out, "+  color: blue") || !strings.Contains(errOut, "ConfigMap/settings created (dry run)") {
		t.Fatalf("diff before apply: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}

	// --dry-run writes nothing.
	code, out, _ = run(t.Context(), t, "apply", app, "-n", "demo", kc, "--dry-run")
	if code != 0 || !strings.Contains(out, "ConfigMap/settings created (dry run)") {
		t.Fatalf("apply --dry-run: exit %d\n%s", code, out)
	}
	if _, err := cs.CoreV1().ConfigMaps("demo").Get(t.Context(), "settings", metav1.GetOptions{}); err == nil {
		t.Fatal("--dry-run created the ConfigMap")
	}

	code, out, errOut = run(t.Context(), t, "apply", app, "-n", "demo", kc, "--prune", "--wait", "30s")
	if code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"ConfigMap/settings created", "ConfigMap/old created", "inventory myapp: 2 objects: 2 created"} {
		if !strings.Contains(out, want) {
			t.Errorf("apply output lacks %q:\n%s", want, out)
		}
	}

	// In sync: exit 0.
	code, out, errOut = run(t.Context(), t, "diff", app, "-n", "demo", kc)
	if code != 0 || out != "" {
		t.Fatalf("diff in sync: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}

	// Changed and a file removed: exit 1, the diff names the field, prune shown.
	writeFiles(t, app, map[string]string{"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  color: green\n"})
	if err := os.Remove(filepath.Join(app, "old.yaml")); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = run(t.Context(), t, "diff", app, "-n", "demo", kc, "--prune")
	if code != 1 || !strings.Contains(out, "-  color: blue") || !strings.Contains(out, "+  color: green") || !strings.Contains(errOut, "ConfigMap/old pruned (dry run)") {
		t.Fatalf("diff after change: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}

	code, out, _ = run(t.Context(), t, "apply", app, "-n", "demo", kc, "--prune", "-o", "json")
	if code != 0 {
		t.Fatalf("apply -o json: exit %d", code)
	}
	var res engine.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("apply -o json is not JSON: %v\n%s", err, out)
	}
	if res.Count(engine.ActionConfigured) != 1 || res.Count(engine.ActionPruned) != 1 {
		t.Fatalf("json result: %+v", res)
	}

	// Errors exit 2 for diff, non-zero for apply, and say what is wrong.
	bad := filepath.Join(t.TempDir(), "bad")
	writeFiles(t, bad, map[string]string{"x.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels: [\n"})
	code, _, errOut = run(t.Context(), t, "diff", bad, "-n", "demo", kc)
	if code != 2 || !strings.Contains(errOut, "x.yaml:") {
		t.Fatalf("diff of invalid YAML: exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = run(t.Context(), t, "diff", app, "-n", "missing", kc)
	if code != 2 || !strings.Contains(errOut, `namespace "missing" does not exist`) {
		t.Fatalf("diff into a missing namespace: exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = run(t.Context(), t, "apply", app, kc)
	if code == 0 || !strings.Contains(errOut, "-n/--namespace") {
		t.Fatalf("apply without a namespace: exit %d, stderr %q", code, errOut)
	}
	cross := filepath.Join(t.TempDir(), "cross")
	writeFiles(t, cross, map[string]string{"x.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: kube-system\n"})
	code, _, errOut = run(t.Context(), t, "apply", cross, "-n", "demo", kc)
	if code == 0 || !strings.Contains(errOut, "ConfigMap/x") || !strings.Contains(errOut, "kube-system") {
		t.Fatalf("apply of a cross-namespace object: exit %d, stderr %q", code, errOut)
	}
}

func TestRenderCommand(t *testing.T) {
	code, out, errOut := run(t.Context(), t, "render", "../render/testdata/helm/charts/web", "--root", "../render/testdata/helm",
		"--helm-values", "../render/testdata/helm/values/web-prod.yml", "--helm-set", "image.tag=abc123", "--release-name", "shop", "-n", "shop")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"# Source: template web/templates/deployment.yaml", "image: registry.example.com/web:abc123", "replicas: 3", "name: shop"} {
		if !strings.Contains(out, want) {
			t.Errorf("render output lacks %q:\n%s", want, out)
		}
	}
	code, _, errOut = run(t.Context(), t, "render", "../render/testdata/helm/charts/web", "--root", "../render/testdata/helm", "--helm-values", "/etc/passwd")
	if code == 0 || !strings.Contains(errOut, "values file") {
		t.Fatalf("values file outside the root: exit %d, stderr %q", code, errOut)
	}
}

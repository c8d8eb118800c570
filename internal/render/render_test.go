package render

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func ids(objs []*unstructured.Unstructured) []string {
	out := make([]string, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.GetKind()+"/"+o.GetName())
	}
	sort.Strings(out)
	return out
}

func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("%s/%s not rendered; got %v", kind, name, ids(objs))
	return nil
}

func TestRenderPlain(t *testing.T) {
	res, err := Render(t.Context(), Options{Root: "testdata", Path: "plain", Namespace: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(res.Objects); strings.Join(got, ",") != "ConfigMap/settings,Deployment/web" || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "plain/sub") {
		t.Fatalf("without recurse: objects = %v, warnings %q, want plain/sub left out and named", got, res.Warnings)
	}
	res, err = Render(t.Context(), Options{Root: "testdata", Path: "plain", Namespace: "demo", Directory: DirectoryOptions{Recurse: true}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Kind != KindPlain {
		t.Errorf("kind = %s, want plain", res.Kind)
	}
	want := []string{"ConfigMap/settings", "Deployment/web", "Service/web", "ServiceAccount/web"}
	if got := ids(res.Objects); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("objects = %v, want %v (hidden folders and non-manifests skipped, List unwrapped)", got, want)
	}
	cm := find(t, res.Objects, "ConfigMap", "settings")
	if v, _, _ := unstructured.NestedString(cm.Object, "data", "date"); v != "2024-01-01" {
		t.Errorf("date-looking value = %q, want the string kept as written", v)
	}
	if src := res.Source(cm); src != "plain/app.yaml:2" {
		t.Errorf("source = %q, want plain/app.yaml:2", src)
	}
	if src := res.Source(find(t, res.Objects, "Deployment", "web")); src != "plain/app.yaml:10" {
		t.Errorf("source = %q, want plain/app.yaml:10", src)
	}
	d := find(t, res.Objects, "Deployment", "web")
	if r, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas"); r != 2 {
		t.Errorf("replicas = %d", r)
	}
}

func TestRenderKustomizeOverlay(t *testing.T) {
	res, err := Render(t.Context(), Options{Root: "testdata", Path: "kustomize/overlays/prod"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Kind != KindKustomize {
		t.Errorf("kind = %s, want kustomize", res.Kind)
	}
	d := find(t, res.Objects, "Deployment", "prod-web")
	if r, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas"); r != 3 {
		t.Errorf("replicas = %d, want the overlay's 3", r)
	}
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	if img := containers[0].(map[string]any)["image"]; img != "registry.example.com/web:2.0" {
		t.Errorf("image = %v, want the overlay's tag", img)
	}
	var cm *unstructured.Unstructured
	for _, o := range res.Objects {
		if o.GetKind() == "ConfigMap" && strings.HasPrefix(o.GetName(), "prod-settings-") {
			cm = o
		}
	}
	if cm == nil {
		t.Fatalf("generated ConfigMap missing: %v", ids(res.Objects))
	}
}

func TestRenderHelmWithValuesOutsideChart(t *testing.T) {
	res, err := Render(t.Context(), Options{
		Root: "testdata/helm", Path: "charts/web", Namespace: "shop",
		Helm: HelmOptions{ReleaseName: "myapp", ValueFiles: []string{"../../values/web-prod.yml"}, Values: map[string]any{"greeting": "hej"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Kind != KindHelm {
		t.Errorf("kind = %s, want helm", res.Kind)
	}
	want := []string{"ConfigMap/myapp-settings", "Deployment/myapp", "Job/myapp-migrate"}
	if got := ids(res.Objects); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("objects = %v, want %v (test hook skipped, other hooks kept)", got, want)
	}
	d := find(t, res.Objects, "Deployment", "myapp")
	if r, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas"); r != 3 {
		t.Errorf("replicas = %d, want 3 from the values file", r)
	}
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	if img := containers[0].(map[string]any)["image"]; img != "registry.example.com/web:2.0" {
		t.Errorf("image = %v, want values file tag merged over chart defaults", img)
	}
	cm := find(t, res.Objects, "ConfigMap", "myapp-settings")
	if cm.GetNamespace() != "shop" {
		t.Errorf("Release.Namespace = %q, want shop", cm.GetNamespace())
	}
	if g, _, _ := unstructured.NestedString(cm.Object, "data", "greeting"); g != "hej" {
		t.Errorf("inline value not applied: greeting = %q", g)
	}
	if src := res.Source(d); src != "template web/templates/deployment.yaml" {
		t.Errorf("source = %q", src)
	}
}

// writeTree writes files (path → content) below a new temp root; a content
// "->target" makes a symlink to target instead.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "->"); ok {
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func renderErr(t *testing.T, opts Options, wants ...string) {
	t.Helper()
	_, err := Render(t.Context(), opts)
	if err == nil {
		t.Fatalf("render succeeded, want an error mentioning %v", wants)
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

func TestRenderErrorsNameFileAndLine(t *testing.T) {
	root := writeTree(t, map[string]string{
		"app/ok.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\n",
		"app/bad.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n  labels: [oops\n",
	})
	renderErr(t, Options{Root: root, Path: "app"}, "app/bad.yaml:", "invalid YAML")

	root = writeTree(t, map[string]string{"app/x.yaml": "apiVersion: v1\nmetadata:\n  name: nokind\n"})
	renderErr(t, Options{Root: root, Path: "app"}, "app/x.yaml:1", "no kind")

	root = writeTree(t, map[string]string{"app/x.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels: {a: b}\n"})
	renderErr(t, Options{Root: root, Path: "app"}, "app/x.yaml:1", "ConfigMap has no metadata.name")

	root = writeTree(t, map[string]string{"app/x.yaml": "kind: ConfigMap\nmetadata:\n  name: x\n"})
	renderErr(t, Options{Root: root, Path: "app"}, "app/x.yaml:1", "no apiVersion")

	root = writeTree(t, map[string]string{
		"app/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: same\n",
		"app/b.yaml": "# dup\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: same\n  namespace: demo\n",
	})
	renderErr(t, Options{Root: root, Path: "app", Namespace: "demo"}, "app/b.yaml:2", "ConfigMap/same is defined twice", "app/a.yaml:1")

	root = writeTree(t, map[string]string{"app/x.yaml": "- just\n- a list\n"})
	renderErr(t, Options{Root: root, Path: "app"}, "app/x.yaml:1", "expected a Kubernetes object")
}

func TestRenderConfinement(t *testing.T) {
	outside := writeTree(t, map[string]string{"secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: stolen\n"})
	root := writeTree(t, map[string]string{
		"app/ok.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\n",
		"chart/Chart.yaml":       "apiVersion: v2\nname: c\nversion: 0.1.0\n",
		"chart/templates/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
	})

	t.Run("dot-dot path", func(t *testing.T) {
		renderErr(t, Options{Root: root, Path: "../" + filepath.Base(outside)}, "../"+filepath.Base(outside))
		if _, err := Render(t.Context(), Options{Root: root, Path: "../" + filepath.Base(outside)}); !errors.Is(err, ErrOutsideRoot) {
			t.Errorf("error %v is not ErrOutsideRoot", err)
		}
	})
	t.Run("absolute path", func(t *testing.T) {
		renderErr(t, Options{Root: root, Path: outside}, outside, "absolute")
	})
	t.Run("symlinked manifest leaving the root", func(t *testing.T) {
		r := writeTree(t, map[string]string{"app/ok.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\n"})
		if err := os.Symlink(filepath.Join(outside, "secret.yaml"), filepath.Join(r, "app", "link.yaml")); err != nil {
			t.Fatal(err)
		}
		renderErr(t, Options{Root: r, Path: "app"}, "app/link.yaml", "leaves the repository root")
	})
	t.Run("symlinked directory leaving the root", func(t *testing.T) {
		r := writeTree(t, map[string]string{"app/ok.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\n"})
		if err := os.Symlink(outside, filepath.Join(r, "app", "elsewhere")); err != nil {
			t.Fatal(err)
		}
		renderErr(t, Options{Root: r, Path: "app"}, "elsewhere", "leaves the repository root")
	})
	t.Run("helm values file outside the root", func(t *testing.T) {
		renderErr(t, Options{Root: root, Path: "chart", Helm: HelmOptions{ValueFiles: []string{"../../" + filepath.Base(outside) + "/secret.yaml"}}}, "values file", "leaves the repository root")
		renderErr(t, Options{Root: root, Path: "chart", Helm: HelmOptions{ValueFiles: []string{filepath.Join(outside, "secret.yaml")}}}, "absolute")
	})
	t.Run("helm chart file symlinked outside the root", func(t *testing.T) {
		r := writeTree(t, map[string]string{"chart/Chart.yaml": "apiVersion: v2\nname: c\nversion: 0.1.0\n"})
		if err := os.Symlink(filepath.Join(outside, "secret.yaml"), filepath.Join(r, "chart", "secret.yaml")); err != nil {
			t.Fatal(err)
		}
		renderErr(t, Options{Root: r, Path: "chart"}, "chart/secret.yaml", "leaves the repository root")
	})
	t.Run("kustomize resource outside the root", func(t *testing.T) {
		r := writeTree(t, map[string]string{"k/kustomization.yaml": "resources:\n- ../../" + filepath.Base(outside) + "/secret.yaml\n"})
		renderErr(t, Options{Root: r, Path: "k"}, "kustomize build k")
	})
	t.Run("kustomize remote base refused", func(t *testing.T) {
		r := writeTree(t, map[string]string{"k/kustomization.yaml": "resources:\n- https://github.com/kubernetes-sigs/kustomize//examples/helloWorld?ref=v3.3.1\n"})
		renderErr(t, Options{Root: r, Path: "k"}, "kustomize build k")
	})
}

func TestRenderLimits(t *testing.T) {
	t.Run("billion laughs fails fast", func(t *testing.T) {
		lol := `apiVersion: v1
kind: ConfigMap
metadata:
  name: lol
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
`
		root := writeTree(t, map[string]string{"app/lol.yaml": lol})
		start := time.Now()
		renderErr(t, Options{Root: root, Path: "app"}, "app/lol.yaml", "alias")
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("billion laughs took %s to refuse", d)
		}
	})
	t.Run("file over the size limit", func(t *testing.T) {
		big := strings.Repeat("# padding line of a very large manifest file..........\n", 20<<20/56+1)
		root := writeTree(t, map[string]string{"app/big.yaml": big})
		renderErr(t, Options{Root: root, Path: "app"}, "app/big.yaml", "more than the limit of 10485760 bytes")
	})
	t.Run("too many objects", func(t *testing.T) {
		var b strings.Builder
		for i := range 11 {
			b.WriteString("---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c" + string(rune('a'+i)) + "\n")
		}
		root := writeTree(t, map[string]string{"app/many.yaml": b.String()})
		renderErr(t, Options{Root: root, Path: "app", Limits: Limits{MaxObjects: 10}}, "more than 10 objects")
	})
}

func TestDetect(t *testing.T) {
	for dir, want := range map[string]Kind{
		"testdata/plain":                   KindPlain,
		"testdata/kustomize/overlays/prod": KindKustomize,
		"testdata/helm/charts/web":         KindHelm,
	} {
		if got := Detect(dir); got != want {
			t.Errorf("Detect(%s) = %s, want %s", dir, got, want)
		}
	}
}

package render

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestKustomizeChartPulls(t *testing.T) {
	root := helmChartsTree(t, withFiles(testChart("app/charts/demo-1.0.0/demo"), map[string]string{
		"app/kustomization.yaml": `resources: [../base, cm.yaml]
helmCharts:
  - {name: demo, repo: https://charts.example.com, version: 1.0.0}
  - {name: redis, repo: https://charts.example.com, version: 1.2.3}
  - {name: local}
`,
		"app/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
		"base/kustomization.yml": `components: [../comp]
helmCharts:
  - {name: redis, repo: https://charts.example.com, version: 1.2.3, releaseName: again}
  - {name: latest, repo: https://charts.example.com}
`,
		"comp/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nhelmCharts:\n  - {name: podinfo, repo: oci://ghcr.io/stefanprodan/charts, version: 6.7.0}\n",
		"plain/cm.yaml":           "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
	}))
	got, err := KustomizeChartPulls(root, "app", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := []ChartPull{
		{Repo: "oci://ghcr.io/stefanprodan/charts", Name: "podinfo", Version: "6.7.0", Where: "comp/kustomization.yaml"},
		{Repo: "https://charts.example.com", Name: "redis", Version: "1.2.3", Where: "base/kustomization.yml"},
		{Repo: "https://charts.example.com", Name: "latest", Where: "base/kustomization.yml"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("pulls =\n%+v\nwant\n%+v", got, want)
	}
	if got[1].Key() != PulledChartKey("https://charts.example.com", "redis", "1.2.3") {
		t.Errorf("key %q", got[1].Key())
	}
	for _, path := range []string{"plain", "app/charts/demo-1.0.0/demo"} {
		if got, err := KustomizeChartPulls(root, path, Limits{}); err != nil || got != nil {
			t.Errorf("%s: pulls %v, %v; want none", path, got, err)
		}
	}
	if _, err := KustomizeChartPulls(root, "../x", Limits{}); !errors.Is(err, ErrOutsideRoot) {
		t.Errorf("path outside: err = %v", err)
	}
}

func TestKustomizeChartPullsBounded(t *testing.T) {
	t.Run("entries", func(t *testing.T) {
		root := helmChartsTree(t, map[string]string{"kustomization.yaml": helmChartsEntries(maxHelmCharts+1, "  - {name: c%d, repo: https://charts.example.com, version: 1.0.0}\n")})
		_, err := KustomizeChartPulls(root, ".", Limits{})
		wantLimit(t, err, "helmCharts")
	})
	t.Run("file size", func(t *testing.T) {
		root := helmChartsTree(t, map[string]string{
			"kustomization.yaml": "helmCharts:\n  - {name: c, repo: https://charts.example.com}\n# " + strings.Repeat("x", 2000) + "\n",
		})
		_, err := KustomizeChartPulls(root, ".", Limits{MaxFileBytes: 1000})
		wantLimit(t, err, maxFileSizeFlag)
	})
	t.Run("depth", func(t *testing.T) {
		files := map[string]string{}
		dir := "k"
		for range maxScanDepth + 3 {
			files[dir+"/kustomization.yaml"] = "resources: [sub]\n"
			dir += "/sub"
		}
		files[dir+"/kustomization.yaml"] = "helmCharts:\n  - {name: deep, repo: https://charts.example.com}\n"
		root := helmChartsTree(t, files)
		if got, err := KustomizeChartPulls(root, "k", Limits{}); err != nil || len(got) != 0 {
			t.Fatalf("pulls %v, %v; want none past the depth bound", got, err)
		}
	})
	t.Run("chartHome outside the root", func(t *testing.T) {
		root := helmChartsTree(t, map[string]string{
			"kustomization.yaml": "helmGlobals: {chartHome: ../..}\nhelmCharts:\n  - {name: c, repo: https://charts.example.com}\n",
		})
		if _, err := KustomizeChartPulls(root, ".", Limits{}); !errors.Is(err, ErrOutsideRoot) {
			t.Fatalf("err = %v, want ErrOutsideRoot", err)
		}
	})
}

// helmChartsEntries is a kustomization of n helmCharts entries, each entry
// formatted with its index.
func helmChartsEntries(n int, entry string) string {
	var k strings.Builder
	k.WriteString("helmCharts:\n")
	for i := range n {
		fmt.Fprintf(&k, entry, i)
	}
	return k.String()
}

// wantLimit fails unless err is a *LimitError of limit.
func wantLimit(t *testing.T, err error, limit string) {
	t.Helper()
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != limit {
		t.Fatalf("err = %v, want the %s limit", err, limit)
	}
}

const pulledKustomization = "namespace: apps\nhelmCharts:\n  - {name: demo, repo: https://charts.example.com, version: 1.0.0, releaseName: r}\n"

// pulledChartFolder writes testChart as the controller unpacks a pulled
// chart: a folder outside the checkout.
func pulledChartFolder(t *testing.T, more map[string]string) string {
	t.Helper()
	return filepath.Join(helmChartsTree(t, withFiles(testChart("unpacked/demo"), more)), "unpacked", "demo")
}

func renderPulled(t *testing.T, root, folder string) (*Result, error) {
	t.Helper()
	return Render(t.Context(), Options{Root: root, Namespace: "apps", Helm: HelmOptions{
		PulledCharts: map[string]string{PulledChartKey("https://charts.example.com", "demo", "1.0.0"): folder}}})
}

func TestKustomizeHelmChartsPulled(t *testing.T) {
	vendored := helmChartsTree(t, withFiles(testChart("charts/demo-1.0.0/demo"), map[string]string{"kustomization.yaml": pulledKustomization}))
	want, err := renderHelmCharts(t, vendored, ".", "apps")
	if err != nil {
		t.Fatal(err)
	}
	root := helmChartsTree(t, map[string]string{"kustomization.yaml": pulledKustomization})
	got, err := renderPulled(t, root, pulledChartFolder(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(kinds(got), kinds(want)) {
		t.Fatalf("pulled renders %v, vendored %v", kinds(got), kinds(want))
	}
	for i := range got.Objects {
		if !reflect.DeepEqual(got.Objects[i].Object, want.Objects[i].Object) {
			t.Errorf("object %d: pulled %v, vendored %v", i, got.Objects[i].Object, want.Objects[i].Object)
		}
	}
	if ns, name, vals := chartConfigMap(t, got); ns != "apps" || name != "r-cm" || vals["a"] != "file" {
		t.Errorf("ConfigMap %s/%s values %v", ns, name, vals)
	}
}

func TestKustomizeHelmChartsPulledConfined(t *testing.T) {
	root := helmChartsTree(t, map[string]string{"kustomization.yaml": pulledKustomization})
	outside := filepath.Join(t.TempDir(), "secret.yaml")
	if err := os.WriteFile(outside, []byte("a: stolen\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Run("values.yaml symlinked out of the chart", func(t *testing.T) {
		folder := pulledChartFolder(t, nil)
		if err := os.Remove(filepath.Join(folder, "values.yaml")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(outside, filepath.Join(folder, "values.yaml")); err != nil {
			t.Fatal(err)
		}
		if _, err := renderPulled(t, root, folder); !errors.Is(err, ErrOutsideRoot) {
			t.Fatalf("err = %v, want ErrOutsideRoot", err)
		}
	})
	t.Run("values.yaml symlinked into the checkout", func(t *testing.T) {
		folder := pulledChartFolder(t, nil)
		if err := os.Remove(filepath.Join(folder, "values.yaml")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(root, "kustomization.yaml"), filepath.Join(folder, "values.yaml")); err != nil {
			t.Fatal(err)
		}
		if _, err := renderPulled(t, root, folder); !errors.Is(err, ErrOutsideRoot) {
			t.Fatalf("err = %v, want ErrOutsideRoot", err)
		}
	})
	t.Run("template symlinked out of the chart", func(t *testing.T) {
		folder := pulledChartFolder(t, nil)
		if err := os.Symlink(outside, filepath.Join(folder, "templates", "x.yaml")); err != nil {
			t.Fatal(err)
		}
		if _, err := renderPulled(t, root, folder); !errors.Is(err, ErrOutsideRoot) {
			t.Fatalf("err = %v, want ErrOutsideRoot", err)
		}
	})
	t.Run("file:// dependency out of the chart", func(t *testing.T) {
		folder := pulledChartFolder(t, map[string]string{
			"unpacked/demo/Chart.yaml": "apiVersion: v2\nname: demo\nversion: 1.0.0\ndependencies:\n  - {name: sib, version: 1.0.0, repository: file://../sib}\n",
			"unpacked/sib/Chart.yaml":  "apiVersion: v2\nname: sib\nversion: 1.0.0\n",
		})
		if _, err := renderPulled(t, root, folder); !errors.Is(err, ErrOutsideRoot) {
			t.Fatalf("err = %v, want ErrOutsideRoot", err)
		}
	})
	t.Run("relative folder", func(t *testing.T) {
		if _, err := renderPulled(t, root, "unpacked/demo"); err == nil || !strings.Contains(err.Error(), "not an absolute path") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestKustomizeHelmChartsPulledOnlyByKey(t *testing.T) {
	root := helmChartsTree(t, map[string]string{"kustomization.yaml": pulledKustomization})
	folder := pulledChartFolder(t, nil)
	for _, key := range []string{
		PulledChartKey("https://charts.example.com", "demo", "1.0.1"),
		PulledChartKey("https://other.example.com", "demo", "1.0.0"),
		PulledChartKey("https://charts.example.com", "other", "1.0.0"),
	} {
		_, err := Render(t.Context(), Options{Root: root, Namespace: "apps", Helm: HelmOptions{PulledCharts: map[string]string{key: folder}}})
		if !errors.Is(err, ErrRemoteReference) {
			t.Errorf("%q: err = %v, want ErrRemoteReference", key, err)
		}
	}
}

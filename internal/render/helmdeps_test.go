package render

import (
	"errors"
	gomaps "maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"

	"github.com/keyless-cd/keyless/internal/confine"
)

const depChart = "apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n"

// TestRenderHelmDependencies: what `helm dependency build` would vendor is
// added at render time: file:// dependencies from inside the repository,
// the others from archives the controller fetched; nothing else.
func TestRenderHelmDependencies(t *testing.T) {
	lib := map[string]string{
		"libs/common/Chart.yaml":        "apiVersion: v2\nname: common\nversion: 1.0.0\n",
		"libs/common/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ .Release.Name }}-common}\ndata: {from: {{ .Values.from | quote }}}\n",
		"libs/common/values.yaml":       "from: common\n",
		"app/templates/cm.yaml":         "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n",
		"app/values.yaml":               "common:\n  from: app\n",
	}
	t.Run("file dependency inside the repository", func(t *testing.T) {
		files := copyMap(lib)
		files["app/Chart.yaml"] = depChart + "- name: common\n  version: 1.x\n  repository: file://../libs/common\n"
		res, err := Render(t.Context(), Options{Root: writeTree(t, files), Path: "app", Namespace: "shop", Helm: HelmOptions{ReleaseName: "r"}})
		if err != nil {
			t.Fatal(err)
		}
		if got := names(res); got != "app,r-common" {
			t.Fatalf("objects %s, want app,r-common", got)
		}
		for _, o := range res.Objects {
			if o.GetName() == "r-common" && o.Object["data"].(map[string]any)["from"] != "app" {
				t.Errorf("the parent's values did not reach the dependency: %v", o.Object["data"])
			}
		}
	})
	t.Run("file dependency leaving the repository", func(t *testing.T) {
		files := copyMap(lib)
		files["app/Chart.yaml"] = depChart + "- name: common\n  version: 1.x\n  repository: file://../../../etc\n"
		_, err := Render(t.Context(), Options{Root: writeTree(t, files), Path: "app", Namespace: "shop"})
		if !errors.Is(err, confine.ErrOutsideRoot) {
			t.Fatalf("err = %v, want ErrOutsideRoot", err)
		}
	})
	t.Run("fetched archive", func(t *testing.T) {
		files := copyMap(lib)
		files["app/Chart.yaml"] = depChart + "- name: common\n  version: 1.x\n  repository: https://charts.example.com\n"
		root := writeTree(t, files)
		common, err := loader.LoadDir(filepath.Join(root, "libs/common"))
		if err != nil {
			t.Fatal(err)
		}
		archive, err := chartutil.Save(common, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Render(t.Context(), Options{Root: root, Path: "app", Namespace: "shop"}); err == nil || !strings.Contains(err.Error(), "common") {
			t.Fatalf("without the archive: err = %v, want the missing dependency common named", err)
		}
		res, err := Render(t.Context(), Options{Root: root, Path: "app", Namespace: "shop", Helm: HelmOptions{ReleaseName: "r", Dependencies: []string{archive}}})
		if err != nil {
			t.Fatal(err)
		}
		if got := names(res); got != "app,r-common" {
			t.Fatalf("objects %s, want app,r-common", got)
		}
	})
	t.Run("vendored copy wins", func(t *testing.T) {
		files := copyMap(lib)
		files["app/Chart.yaml"] = depChart + "- name: common\n  version: 1.x\n  repository: file://../libs/common\n"
		files["app/charts/common/Chart.yaml"] = "apiVersion: v2\nname: common\nversion: 1.0.1\n"
		files["app/charts/common/templates/cm.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: vendored}\n"
		res, err := Render(t.Context(), Options{Root: writeTree(t, files), Path: "app", Namespace: "shop"})
		if err != nil {
			t.Fatal(err)
		}
		if got := names(res); got != "app,vendored" {
			t.Fatalf("objects %s, want app,vendored", got)
		}
	})
}

func copyMap(m map[string]string) map[string]string { return gomaps.Clone(m) }

func names(res *Result) string {
	var n []string
	for _, o := range res.Objects {
		n = append(n, o.GetName())
	}
	slices.Sort(n)
	return strings.Join(n, ",")
}

package render

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// helmChartsTree writes files (path → content) under a new root.
func helmChartsTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, c := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// testChart is a chart at prefix (a chartHome folder) whose ConfigMap
// carries its release, namespace and values as JSON; a CRD in crds/ and a
// test hook.
func testChart(prefix string) map[string]string {
	return map[string]string{
		prefix + "/Chart.yaml":  "apiVersion: v2\nname: demo\nversion: 1.0.0\n",
		prefix + "/values.yaml": "a: file\nb: file\nnested:\n  x: file\n  w: file\ndropped: file\n",
		prefix + "/templates/cm.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-cm
  namespace: {{ .Release.Namespace }}
data:
  values: {{ toJson .Values | quote }}
`,
		prefix + "/templates/test.yaml": `apiVersion: v1
kind: Pod
metadata:
  name: {{ .Release.Name }}-test
  annotations:
    helm.sh/hook: test
spec:
  containers: [{name: t, image: busybox}]
`,
		prefix + "/crds/crd.yaml": `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]
`,
	}
}

func withFiles(base map[string]string, more map[string]string) map[string]string {
	for k, v := range more {
		base[k] = v
	}
	return base
}

func renderHelmCharts(t *testing.T, root, path, namespace string) (*Result, error) {
	t.Helper()
	return Render(t.Context(), Options{Root: root, Path: path, Namespace: namespace})
}

// chartConfigMap returns the namespace, name and values of the chart's
// ConfigMap.
func chartConfigMap(t *testing.T, res *Result) (ns, name string, values map[string]any) {
	t.Helper()
	for _, o := range res.Objects {
		if o.GetKind() != "ConfigMap" {
			continue
		}
		data, _, _ := unstructuredString(o.Object, "data", "values")
		if err := json.Unmarshal([]byte(data), &values); err != nil {
			t.Fatalf("values %q: %v", data, err)
		}
		return o.GetNamespace(), o.GetName(), values
	}
	t.Fatalf("no ConfigMap rendered: %v", kinds(res))
	return "", "", nil
}

func unstructuredString(obj map[string]any, fields ...string) (string, bool, error) {
	var cur any = obj
	for _, f := range fields {
		m, ok := cur.(map[string]any)
		if !ok {
			return "", false, nil
		}
		cur = m[f]
	}
	s, ok := cur.(string)
	return s, ok, nil
}

func kinds(res *Result) []string {
	var out []string
	for _, o := range res.Objects {
		out = append(out, o.GetKind()+"/"+o.GetName())
	}
	return out
}

func TestKustomizeHelmChartsValuesMerge(t *testing.T) {
	inline := "    valuesInline:\n      a: inline\n      nested: {x: inline, z: inline}\n      extra: inline\n"
	for _, tc := range []struct {
		mode string
		want map[string]any
	}{
		{"", map[string]any{"a": "inline", "b": "file", "nested": map[string]any{"x": "inline", "w": "file", "z": "inline"}, "extra": "inline", "dropped": "file"}},
		{"override", map[string]any{"a": "inline", "b": "file", "nested": map[string]any{"x": "inline", "w": "file", "z": "inline"}, "extra": "inline", "dropped": "file"}},
		{"merge", map[string]any{"a": "file", "b": "file", "nested": map[string]any{"x": "inline", "w": "file", "z": "inline"}, "extra": "inline", "dropped": "file"}},
		// replace: the values file is replaced by the inline values; the
		// chart's own values.yaml still applies under them (helm).
		{"replace", map[string]any{"a": "inline", "b": "file", "nested": map[string]any{"x": "inline", "w": "file", "z": "inline"}, "extra": "inline", "dropped": "file", "fromvf": nil}},
	} {
		t.Run("mode "+tc.mode, func(t *testing.T) {
			merge := ""
			if tc.mode != "" {
				merge = "    valuesMerge: " + tc.mode + "\n"
			}
			// A values file of its own (valuesFile), then an additional one.
			root := helmChartsTree(t, withFiles(testChart("charts/demo"), map[string]string{
				"vf.yaml":            "a: vf\nb: file\nfromvf: vf\n",
				"extra.yaml":         "dropped: additional\n",
				"kustomization.yaml": "helmCharts:\n  - name: demo\n    valuesFile: vf.yaml\n    additionalValuesFiles: [extra.yaml]\n" + merge + inline,
			}))
			res, err := renderHelmCharts(t, root, ".", "apps")
			if err != nil {
				t.Fatal(err)
			}
			_, _, got := chartConfigMap(t, res)
			want := map[string]any{}
			for k, v := range tc.want {
				want[k] = v
			}
			want["dropped"] = "additional" // additionalValuesFiles come last
			switch tc.mode {
			case "merge":
				want["a"] = "vf"
				want["fromvf"] = "vf"
			case "replace":
				delete(want, "fromvf")
			default:
				want["fromvf"] = "vf"
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("values = %v\nwant     %v", got, want)
			}
		})
	}
}

func TestKustomizeHelmChartsIncludeCRDsAndTests(t *testing.T) {
	for _, tc := range []struct {
		fields   string
		crd, pod bool
	}{
		{"", false, true}, // kustomize keeps test hooks unless skipTests
		{"    includeCRDs: true\n", true, true},
		{"    skipTests: true\n", false, false},
		{"    skipHooks: true\n    includeCRDs: true\n", true, false},
	} {
		root := helmChartsTree(t, withFiles(testChart("charts/demo"), map[string]string{
			"kustomization.yaml": "helmCharts:\n  - name: demo\n    releaseName: r\n" + tc.fields,
		}))
		res, err := renderHelmCharts(t, root, ".", "apps")
		if err != nil {
			t.Fatalf("%q: %v", tc.fields, err)
		}
		k := strings.Join(kinds(res), " ")
		if got := strings.Contains(k, "CustomResourceDefinition/"); got != tc.crd {
			t.Errorf("%q: CRD rendered = %v, want %v (%s)", tc.fields, got, tc.crd, k)
		}
		if got := strings.Contains(k, "Pod/r-test"); got != tc.pod {
			t.Errorf("%q: test hook rendered = %v, want %v (%s)", tc.fields, got, tc.pod, k)
		}
	}
}

func TestKustomizeHelmChartsReleaseAndNamespaceDefaults(t *testing.T) {
	for _, tc := range []struct {
		name           string
		files          map[string]string
		path, appNS    string
		wantNS, wantRl string
	}{
		{name: "helm template's default release, the Application's namespace",
			files: map[string]string{"kustomization.yaml": "helmCharts:\n  - name: demo\n"},
			path:  ".", appNS: "apps", wantNS: "apps", wantRl: "release-name"},
		{name: "no namespace anywhere: helm's default",
			files: map[string]string{"kustomization.yaml": "helmCharts:\n  - name: demo\n"},
			path:  ".", wantNS: "default", wantRl: "release-name"},
		{name: "the kustomization's namespace",
			files: map[string]string{"kustomization.yaml": "namespace: team\nhelmCharts:\n  - name: demo\n    releaseName: web\n"},
			path:  ".", appNS: "apps", wantNS: "team", wantRl: "web"},
		{name: "the chart's namespace wins; the transformer leaves it",
			files: map[string]string{"kustomization.yaml": "namespace: team\nhelmCharts:\n  - name: demo\n    namespace: own\n"},
			path:  ".", wantNS: "own", wantRl: "release-name"},
		{name: "inherited from the overlay (kustomize's helmRootNamespace)",
			files: map[string]string{
				"base/kustomization.yaml":    "helmCharts:\n  - name: demo\n    nameTemplate: '{{ \"tmpl\" }}-x'\n",
				"overlay/kustomization.yaml": "namespace: prod\nresources: [../base]\n",
			},
			path: "overlay", appNS: "apps", wantNS: "prod", wantRl: "tmpl-x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chartAt := "charts/demo"
			if tc.path == "overlay" {
				chartAt = "base/charts/demo"
			}
			root := helmChartsTree(t, withFiles(testChart(chartAt), tc.files))
			res, err := renderHelmCharts(t, root, tc.path, tc.appNS)
			if err != nil {
				t.Fatal(err)
			}
			ns, name, _ := chartConfigMap(t, res)
			if ns != tc.wantNS || name != tc.wantRl+"-cm" {
				t.Errorf("ConfigMap %s/%s, want %s/%s-cm", ns, name, tc.wantNS, tc.wantRl)
			}
		})
	}
}

func TestKustomizeHelmChartsRefused(t *testing.T) {
	t.Run("chart outside the root", func(t *testing.T) {
		outer := helmChartsTree(t, withFiles(testChart("shared/demo"), map[string]string{
			"repo/app/kustomization.yaml": "helmGlobals:\n  chartHome: ../../shared\nhelmCharts:\n  - name: demo\n",
		}))
		_, err := renderHelmCharts(t, filepath.Join(outer, "repo"), "app", "apps")
		if !errors.Is(err, ErrOutsideRoot) {
			t.Fatalf("err = %v, want ErrOutsideRoot", err)
		}
	})
	t.Run("chart symlinked outside the root", func(t *testing.T) {
		outer := helmChartsTree(t, withFiles(testChart("shared/demo"), map[string]string{
			"repo/app/kustomization.yaml": "helmCharts:\n  - name: demo\n",
		}))
		if err := os.MkdirAll(filepath.Join(outer, "repo/app/charts"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(outer, "shared/demo"), filepath.Join(outer, "repo/app/charts/demo")); err != nil {
			t.Fatal(err)
		}
		_, err := renderHelmCharts(t, filepath.Join(outer, "repo"), "app", "apps")
		if !errors.Is(err, ErrOutsideRoot) {
			t.Fatalf("err = %v, want ErrOutsideRoot", err)
		}
	})
	t.Run("repo chart not vendored", func(t *testing.T) {
		root := helmChartsTree(t, map[string]string{
			"app/kustomization.yaml": "helmCharts:\n  - name: redis\n    repo: https://charts.example.com\n    version: 1.2.3\n",
		})
		_, err := renderHelmCharts(t, root, "app", "apps")
		if !errors.Is(err, ErrRemoteReference) {
			t.Fatalf("err = %v, want ErrRemoteReference", err)
		}
		for _, want := range []string{"app/kustomization.yaml", `"redis"`, "https://charts.example.com", "vendor it at app/charts/redis-1.2.3/redis"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
	})
	t.Run("repo chart vendored where kustomize pulls it", func(t *testing.T) {
		root := helmChartsTree(t, withFiles(testChart("app/charts/demo-1.0.0/demo"), map[string]string{
			"app/kustomization.yaml": "helmCharts:\n  - name: demo\n    repo: https://charts.example.com\n    version: 1.0.0\n    releaseName: r\n",
		}))
		res, err := renderHelmCharts(t, root, "app", "apps")
		if err != nil {
			t.Fatal(err)
		}
		if _, name, _ := chartConfigMap(t, res); name != "r-cm" {
			t.Errorf("ConfigMap %s", name)
		}
	})
	t.Run("local chart missing", func(t *testing.T) {
		root := helmChartsTree(t, map[string]string{"kustomization.yaml": "helmCharts:\n  - name: nope\n"})
		_, err := renderHelmCharts(t, root, ".", "apps")
		if err == nil || !strings.Contains(err.Error(), "no chart found at charts/nope") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("releaseName and nameTemplate", func(t *testing.T) {
		root := helmChartsTree(t, withFiles(testChart("charts/demo"), map[string]string{
			"kustomization.yaml": "helmCharts:\n  - name: demo\n    releaseName: a\n    nameTemplate: b\n",
		}))
		if _, err := renderHelmCharts(t, root, ".", "apps"); err == nil || !strings.Contains(err.Error(), "name-template") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestKustomizeHelmChartsBombBounded(t *testing.T) {
	t.Run("many entries", func(t *testing.T) {
		root := helmChartsTree(t, withFiles(testChart("charts/demo"), map[string]string{"kustomization.yaml": helmChartsEntries(maxHelmCharts+1, "  - name: demo\n    releaseName: r%d\n")}))
		_, err := renderHelmCharts(t, root, ".", "apps")
		wantLimit(t, err, "helmCharts")
	})
	t.Run("huge values into many objects", func(t *testing.T) {
		files := withFiles(testChart("charts/demo"), map[string]string{
			"charts/demo/templates/many.yaml": "{{ range .Values.items }}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{{ . }}\n{{ end }}\n",
			"kustomization.yaml":              "helmCharts:\n  - name: demo\n    valuesInline:\n      items: [" + strings.Repeat("a,", 10) + "b]\n",
		})
		var k strings.Builder
		k.WriteString("helmCharts:\n  - name: demo\n    valuesInline:\n      items:\n")
		for i := range DefaultLimits.MaxObjects + 10 {
			fmt.Fprintf(&k, "      - %d\n", i)
		}
		files["kustomization.yaml"] = k.String()
		root := helmChartsTree(t, files)
		_, err := renderHelmCharts(t, root, ".", "apps")
		var le *LimitError
		if !errors.As(err, &le) || le.Limit != "--max-objects" {
			t.Fatalf("err = %v, want the object limit", err)
		}
	})
	t.Run("huge output", func(t *testing.T) {
		files := withFiles(testChart("charts/demo"), map[string]string{
			"charts/demo/templates/big.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big-{{ .Release.Name }}\ndata:\n  x: {{ .Values.blob | quote }}\n",
		})
		files["blob.yaml"] = "blob: " + strings.Repeat("x", 900_000) + "\n"
		var k strings.Builder
		k.WriteString("helmCharts:\n")
		for i := range 12 {
			fmt.Fprintf(&k, "  - name: demo\n    releaseName: r%d\n    additionalValuesFiles: [blob.yaml]\n", i)
		}
		files["kustomization.yaml"] = k.String()
		root := helmChartsTree(t, files)
		_, err := Render(t.Context(), Options{Root: root, Namespace: "apps", Limits: Limits{MaxFileBytes: 12 << 20 / 10}})
		var le *LimitError
		if !errors.As(err, &le) || !strings.Contains(le.Detail, "helmCharts render more than") {
			t.Fatalf("err = %v, want the inflated-bytes limit", err)
		}
	})
}

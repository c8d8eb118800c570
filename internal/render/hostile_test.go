package render

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// tarpit is a loopback server that counts the requests it gets.
func tarpit(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		_, _ = fmt.Fprint(w, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: remote}\n")
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &hits
}

const chartYAML = "apiVersion: v2\nname: shop\nversion: 0.1.0\n"

func TestRenderFetchesNothingFromTheNetwork(t *testing.T) {
	url, hits := tarpit(t)
	cases := map[string]map[string]string{
		"kustomize resource URL": {
			"app/kustomization.yaml": "resources:\n- cm.yaml\n- " + url + "/remote.yaml\n",
			"app/cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
		},
		"kustomize URL in an included base": {
			"app/kustomization.yaml":  "resources:\n- ../base\n",
			"base/kustomization.yaml": "resources:\n- " + url + "/remote.yaml\n",
		},
		"kustomize generator file URL": {
			"app/kustomization.yaml": "configMapGenerator:\n- name: c\n  files:\n  - key=" + url + "/f.txt\n",
		},
		"kustomize remote git base": {
			"app/kustomization.yaml": "resources:\n- github.com/example/repo//deploy?ref=v1\n",
		},
		"helm schema http $ref": {
			"app/Chart.yaml":         chartYAML,
			"app/values.schema.json": `{"type":"object","properties":{"a":{"$ref":"` + url + `/s.json"}}}`,
		},
		"helm schema file $ref": {
			"app/Chart.yaml":         chartYAML,
			"app/values.schema.json": `{"$ref":"file:///etc/passwd"}`,
		},
		"helm schema relative $ref": {
			"app/Chart.yaml":         chartYAML,
			"app/values.schema.json": `{"allOf":[{"$ref":"other.json"}]}`,
		},
		"helm schema unknown $schema": {
			"app/Chart.yaml":         chartYAML,
			"app/values.schema.json": `{"$schema":"` + url + `/meta.json","type":"object"}`,
		},
		"helm subchart schema": {
			"app/Chart.yaml":                    chartYAML,
			"app/charts/sub/Chart.yaml":         "apiVersion: v2\nname: sub\nversion: 0.1.0\n",
			"app/charts/sub/values.schema.json": `{"$ref":"` + url + `/s.json"}`,
			"app/charts/sub/templates/cm.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: sub}\n",
			"app/templates/cm.yaml":             "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
		},
	}
	for name, files := range cases {
		t.Run(name, func(t *testing.T) {
			root := writeTree(t, files)
			_, err := Render(t.Context(), Options{Root: root, Path: "app", Namespace: "shop"})
			if !errors.Is(err, ErrRemoteReference) {
				t.Fatalf("err = %v, want ErrRemoteReference", err)
			}
			if !strings.Contains(err.Error(), ".yaml") && !strings.Contains(err.Error(), "values.schema.json") {
				t.Errorf("error %q names no file", err)
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the loopback server got %d requests during renders", n)
	}
}

// Helm's schema library carries every draft's meta-schema: a chart naming one
// over http or https (bitnami's "http://json-schema.org/schema#" is the
// latest draft) renders, offline, and its values are still validated.
func TestRenderSchemaBuiltInMetaSchemas(t *testing.T) {
	for _, meta := range []string{
		"http://json-schema.org/schema#",
		"https://json-schema.org/schema",
		"http://json-schema.org/draft-07/schema#",
		"https://json-schema.org/draft-07/schema#",
		"http://json-schema.org/draft-04/schema",
		"https://json-schema.org/draft/2020-12/schema",
		"http://json-schema.org/draft/2019-09/schema#",
	} {
		t.Run(meta, func(t *testing.T) {
			schema := `{"$schema":"` + meta + `","definitions":{"n":{"type":"string"}},"properties":{"a":{"$ref":"#/definitions/n"},` +
				`"b":{"$ref":"http://json-schema.org/draft-07/schema#/definitions/nonNegativeInteger"}}}`
			files := map[string]string{
				"app/Chart.yaml":         chartYAML,
				"app/values.schema.json": schema,
				"app/values.yaml":        "a: x\nb: 1\n",
				"app/templates/cm.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
			}
			if _, err := Render(t.Context(), Options{Root: writeTree(t, files), Path: "app", Namespace: "shop"}); err != nil {
				t.Fatalf("a chart whose schema names a built-in meta-schema was refused: %v", err)
			}
			files["app/values.yaml"] = "a: 1\nb: -1\n"
			_, err := Render(t.Context(), Options{Root: writeTree(t, files), Path: "app", Namespace: "shop"})
			if err == nil || !strings.Contains(err.Error(), "schema") {
				t.Fatalf("values violating the schema rendered: err = %v", err)
			}
		})
	}
}

// An unvendored dependency is what to fix first: it is reported even when a
// subchart's schema would be checked.
func TestRenderReportsMissingDependencyBeforeSchema(t *testing.T) {
	root := writeTree(t, map[string]string{
		"app/Chart.yaml":         chartYAML + "dependencies:\n- name: common\n  version: 2.x.x\n  repository: oci://registry-1.docker.io/bitnamicharts\n",
		"app/values.schema.json": `{"$schema":"http://json-schema.org/schema#","properties":{"a":{"$ref":"https://example.com/s.json"}}}`,
		"app/templates/cm.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
	})
	_, err := Render(t.Context(), Options{Root: root, Path: "app", Namespace: "shop"})
	if err == nil || !strings.Contains(err.Error(), "common") || errors.Is(err, ErrRemoteReference) {
		t.Fatalf("err = %v, want the missing dependency common named", err)
	}
}

func TestRenderBounds(t *testing.T) {
	many := strings.Repeat("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", 2000)
	cases := map[string]struct {
		files map[string]string
		lim   Limits
		want  error
		names string
	}{
		"chart symlink loop": {files: map[string]string{
			"app/Chart.yaml": chartYAML, "app/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
			"app/templates/loop": "->..",
		}, want: ErrSymlinkCycle, names: "app/templates/loop"},
		"helm repeat bomb": {files: map[string]string{
			"app/Chart.yaml": chartYAML, "app/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {x: '{{ repeat 400000000 \"x\" }}'}\n",
		}, want: ErrLimit, names: "repeat"},
		"objects counted while decoding": {files: map[string]string{"app/many.yaml": many},
			lim: Limits{MaxObjects: 100}, want: ErrLimit, names: "app/many.yaml"},
		"helm objects counted while decoding": {files: map[string]string{"app/Chart.yaml": chartYAML, "app/templates/many.yaml": many},
			lim: Limits{MaxObjects: 100}, want: ErrLimit, names: "many.yaml"},
		"kustomize input bytes": {files: map[string]string{
			"app/kustomization.yaml": "resources:\n- big.yaml\n",
			"app/big.yaml":           "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\ndata: {x: '" + strings.Repeat("x", 4096) + "'}\n",
		}, lim: Limits{MaxFileBytes: 1024}, want: ErrLimit, names: "big.yaml"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			root := writeTree(t, tc.files)
			_, err := Render(t.Context(), Options{Root: root, Path: "app", Namespace: "shop", Limits: tc.lim})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.names) {
				t.Errorf("error %q does not name %q", err, tc.names)
			}
		})
	}
}

func FuzzKustomizationRemoteRefs(f *testing.F) {
	f.Add([]byte("resources:\n- a.yaml\n- https://example.com/x.yaml\n"))
	f.Add([]byte("configMapGenerator:\n- name: c\n  files: [k=git@github.com:o/r]\n"))
	f.Add([]byte("patches:\n- path: p.yaml\nhelmCharts:\n- repo: https://charts\n"))
	f.Add([]byte("resources: github.com/o/r//d?ref=v1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		refs, err := KustomizationRemoteRefs(data, func(string) bool { return false })
		if err != nil {
			return
		}
		for _, r := range refs {
			if r == "" {
				t.Fatal("an empty reference was reported as remote")
			}
		}
	})
}

func FuzzSchemaRemoteRefs(f *testing.F) {
	f.Add([]byte(`{"$ref":"#/definitions/a","definitions":{"a":{"$ref":"http://x/y"}}}`))
	f.Add([]byte(`{"$schema":"http://json-schema.org/draft-07/schema#","items":[{"$dynamicRef":"file:///etc"}]}`))
	f.Add([]byte(`[[[[[[[[{"$ref":"a.json"}]]]]]]]]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		refs, err := SchemaRemoteRefs(data)
		if err != nil {
			return
		}
		for _, r := range refs {
			// A fragment is local for $ref; only an odd $schema may be one.
			if strings.HasPrefix(r, "#") && !strings.Contains(string(data), "$schema") {
				t.Fatalf("a local fragment %q was reported as remote", r)
			}
		}
	})
}

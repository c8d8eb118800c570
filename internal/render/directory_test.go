package render

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func cm(name string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\n"
}

// TestDirectoryOptions: Argo CD's directory source — the folder's own files
// unless recurse; include/exclude globs against the path relative to the
// folder (gobwas/glob, "*" crossing "/", braces); exclude wins; hidden
// files and folders skipped.
func TestDirectoryOptions(t *testing.T) {
	root := writeTree(t, map[string]string{
		"app/a.yaml":          cm("a"),
		"app/b.yml":           cm("b"),
		"app/c.json":          `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}`,
		"app/sub/d.yaml":      cm("d"),
		"app/sub/deep/e.yaml": cm("e"),
		"app/.hidden/h.yaml":  cm("hidden"),
		"app/.h.yaml":         cm("hidden-file"),
		"app/README.md":       "docs",
	})
	for _, tc := range []struct {
		name string
		dir  DirectoryOptions
		want string
	}{
		{"default: no recursion", DirectoryOptions{}, "a,b,c"},
		{"recurse", DirectoryOptions{Recurse: true}, "a,b,c,d,e"},
		{"include star", DirectoryOptions{Include: "*.yaml"}, "a"},
		{"include star crosses folders as in Argo CD", DirectoryOptions{Recurse: true, Include: "*.yaml"}, "a,d,e"},
		{"include braces", DirectoryOptions{Include: "{a.yaml,c.json}"}, "a,c"},
		{"include a subfolder needs recurse", DirectoryOptions{Include: "sub/*"}, ""},
		{"include a subfolder with recurse", DirectoryOptions{Recurse: true, Include: "sub/*"}, "d,e"},
		{"a star after a prefix crosses folders too", DirectoryOptions{Recurse: true, Include: "sub/d*"}, "d,e"},
		{"exclude", DirectoryOptions{Exclude: "b.yml"}, "a,c"},
		{"exclude braces with recurse", DirectoryOptions{Recurse: true, Exclude: "{sub/deep/*,*.json}"}, "a,b,d"},
		{"exclude wins over include", DirectoryOptions{Include: "*", Exclude: "a.yaml"}, "b,c"},
		{"include and exclude", DirectoryOptions{Recurse: true, Include: "sub/*", Exclude: "*e.yaml"}, "d"},
		{"hidden never rendered", DirectoryOptions{Recurse: true, Include: "*h*"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Render(t.Context(), Options{Root: root, Path: "app", Directory: tc.dir})
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, o := range res.Objects {
				names = append(names, o.GetName())
			}
			if got := strings.Join(names, ","); got != tc.want {
				t.Errorf("rendered %q, want %q", got, tc.want)
			}
		})
	}
}

// TestDirectoryNoRecurseWarns: subfolders left out for want of recurse are
// named in a warning (only those holding manifests).
func TestDirectoryNoRecurseWarns(t *testing.T) {
	root := writeTree(t, map[string]string{
		"app/a.yaml":        cm("a"),
		"app/sub/d.yaml":    cm("d"),
		"app/docs/x.md":     "docs",
		"app/.git/ignored":  "x",
		"app/lib/k.jsonnet": "{}",
	})
	res, err := Render(t.Context(), Options{Root: root, Path: "app"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "app/lib, app/sub") || strings.Contains(res.Warnings[0], "docs") || !strings.Contains(res.Warnings[0], "directory.recurse") {
		t.Errorf("warnings = %q, want app/lib and app/sub named with directory.recurse", res.Warnings)
	}
	res, err = Render(t.Context(), Options{Root: root, Path: "app", Directory: DirectoryOptions{Recurse: true, Exclude: "lib/*"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 0 || len(res.Objects) != 2 {
		t.Errorf("with recurse: warnings %q, %d objects", res.Warnings, len(res.Objects))
	}
}

func TestDirectoryInvalidGlob(t *testing.T) {
	root := writeTree(t, map[string]string{"app/a.yaml": cm("a")})
	renderErr(t, Options{Root: root, Path: "app", Directory: DirectoryOptions{Include: "[a"}}, "directory.include", "[a")
	renderErr(t, Options{Root: root, Path: "app", Directory: DirectoryOptions{Exclude: "[!]"}}, "directory.exclude")
}

// TestDetectOrder: as Argo CD, a kustomization wins over Chart.yaml; a
// folder named Chart.yaml is not a chart.
func TestDetectOrder(t *testing.T) {
	for _, tc := range []struct {
		files []string
		want  Kind
	}{
		{[]string{"a.yaml"}, KindPlain},
		{[]string{"Chart.yaml"}, KindHelm},
		{[]string{"kustomization.yaml"}, KindKustomize},
		{[]string{"Chart.yaml", "kustomization.yaml"}, KindKustomize},
		{[]string{"Chart.yaml", "kustomization.yml"}, KindKustomize},
		{[]string{"Chart.yaml", "Kustomization"}, KindKustomize},
		{[]string{"Chart.yaml/x"}, KindPlain},
		{[]string{"kustomization.yaml/x", "Chart.yaml"}, KindHelm},
		{[]string{"HelmChart.yaml"}, KindPlain},
		{[]string{"main.jsonnet"}, KindPlain},
	} {
		files := map[string]string{}
		for _, f := range tc.files {
			files[f] = "x: 1\n"
		}
		if got := Detect(writeTree(t, files)); got != tc.want {
			t.Errorf("Detect(%v) = %s, want %s", tc.files, got, tc.want)
		}
	}
}

func TestJsonnet(t *testing.T) {
	outside := writeTree(t, map[string]string{"secret.libsonnet": `{apiVersion: "v1", kind: "Secret", metadata: {name: "stolen"}}`})
	root := writeTree(t, map[string]string{
		"app/object.jsonnet": `{apiVersion: "v1", kind: "ConfigMap", metadata: {name: "object"}}`,
		"app/array.jsonnet":  `[{apiVersion: "v1", kind: "ConfigMap", metadata: {name: "item-" + i}} for i in ["0", "1"]] + [null]`,
		"app/list.jsonnet":   `{apiVersion: "v1", kind: "List", items: [{apiVersion: "v1", kind: "ConfigMap", metadata: {name: "listed"}}]}`,
		"app/cm.libsonnet":   `{cm(name):: {apiVersion: "v1", kind: "ConfigMap", metadata: {name: name}}}`,
		"app/uses.jsonnet":   `(import "cm.libsonnet").cm("imported")`,
		"app/plain.yaml":     cm("yaml"),
		"vars/main.jsonnet": `function(name, replicas) {apiVersion: "v1", kind: "ConfigMap", metadata: {name: name},
			data: {env: std.extVar("env"), replicas: std.toString(replicas), tier: std.toString(std.extVar("tier"))}}`,
		"libs/k/k.libsonnet":      `{cm(name):: {apiVersion: "v1", kind: "ConfigMap", metadata: {name: name}}}`,
		"withlib/main.jsonnet":    `local k = import "k.libsonnet"; [k.cm("from-lib"), (import "sub/x.libsonnet")]`,
		"withlib/sub/x.libsonnet": `{apiVersion: "v1", kind: "ConfigMap", metadata: {name: "relative"}}`,
		"str/main.jsonnet":        `{apiVersion: "v1", kind: "ConfigMap", metadata: {name: "str"}, data: {raw: importstr "raw.txt"}}`,
		"str/raw.txt":             "hello",
	})
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"object, array, List, import beside; yaml kept", Options{Path: "app"}, "item-0,item-1,listed,object,yaml,imported"},
		{"ext vars and TLAs, string and code", Options{Path: "vars", Directory: DirectoryOptions{Jsonnet: JsonnetOptions{
			ExtVars: []JsonnetVar{{Name: "env", Value: "prod"}, {Name: "tier", Value: "1 + 2", Code: true}},
			TLAs:    []JsonnetVar{{Name: "name", Value: "tla"}, {Name: "replicas", Value: "2 * 3", Code: true}},
		}}}, "tla env=prod replicas=6 tier=3"},
		{"libs from the repository root", Options{Path: "withlib", Directory: DirectoryOptions{Jsonnet: JsonnetOptions{Libs: []string{"libs/k"}}}}, "from-lib,relative"},
		{"importstr", Options{Path: "str"}, "str"},
		{"include selects jsonnet too", Options{Path: "app", Directory: DirectoryOptions{Include: "{object.jsonnet,plain.yaml}"}}, "object,yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Root = root
			res, err := Render(t.Context(), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, o := range res.Objects {
				n := o.GetName()
				if d, ok := o.Object["data"].(map[string]any); ok && d["env"] != nil {
					n += " env=" + d["env"].(string) + " replicas=" + d["replicas"].(string) + " tier=" + d["tier"].(string)
				}
				names = append(names, n)
			}
			if got := strings.Join(names, ","); got != tc.want {
				t.Errorf("rendered %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("sources name the file and item", func(t *testing.T) {
		res, err := Render(t.Context(), Options{Root: root, Path: "app"})
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Source(find(t, res.Objects, "ConfigMap", "item-1")); got != "app/array.jsonnet (item 1)" {
			t.Errorf("source = %q", got)
		}
		if got := res.Source(find(t, res.Objects, "ConfigMap", "object")); got != "app/object.jsonnet" {
			t.Errorf("source = %q", got)
		}
	})

	escape := "../../" + filepath.Base(outside) + "/secret.libsonnet"
	for _, tc := range []struct {
		name  string
		files map[string]string
		opts  Options
		is    error
		wants []string
	}{
		{"absolute import", map[string]string{"app/main.jsonnet": "\n\nimport \"/etc/passwd\""}, Options{}, ErrOutsideRoot,
			[]string{"app/main.jsonnet:3:1", "/etc/passwd", "absolute"}},
		{"dot-dot import", map[string]string{"app/main.jsonnet": `import "` + escape + `"`}, Options{}, ErrOutsideRoot,
			[]string{"app/main.jsonnet:1:1", escape, "leaves the repository root"}},
		{"importstr escaping", map[string]string{"app/main.jsonnet": `{a: importstr "../../../etc/passwd"}`}, Options{}, ErrOutsideRoot,
			[]string{"app/main.jsonnet:1:5", "leaves the repository root"}},
		{"symlink out of the root", map[string]string{"app/main.jsonnet": `import "lib/link.libsonnet"`, "app/lib/link.libsonnet": "->" + filepath.Join(outside, "secret.libsonnet")}, Options{}, ErrOutsideRoot,
			[]string{"app/main.jsonnet:1:1", "leaves the repository root"}},
		{"lib outside the root", map[string]string{"app/main.jsonnet": `{}`}, Options{Directory: DirectoryOptions{Jsonnet: JsonnetOptions{Libs: []string{"../x"}}}}, ErrOutsideRoot,
			[]string{"directory.jsonnet.libs", "../x"}},
		{"stack bomb", map[string]string{"app/main.jsonnet": "local f(x) = f(x + 1);\nf(0)"}, Options{}, ErrJsonnet,
			[]string{"app/main.jsonnet:1:14", "max stack frames exceeded", "more frames"}},
		{"runtime error names file:line", map[string]string{"app/main.jsonnet": "{\n  a: error \"boom\",\n}"}, Options{}, ErrJsonnet,
			[]string{"app/main.jsonnet:2:6", "boom"}},
		{"error in an import names the import", map[string]string{"app/main.jsonnet": `import "lib.libsonnet"`, "app/lib.libsonnet": "{\n\n  b: std.extVar(\"missing\"),\n}"}, Options{}, ErrJsonnet,
			[]string{"app/lib.libsonnet:3:6", "missing"}},
		{"syntax error", map[string]string{"app/main.jsonnet": "{\n  a: ,\n}"}, Options{}, ErrJsonnet,
			[]string{"app/main.jsonnet:2:"}},
		{"missing import", map[string]string{"app/main.jsonnet": `import "nope.libsonnet"`}, Options{}, ErrJsonnet,
			[]string{"app/main.jsonnet:1:1", "nope.libsonnet", "not found"}},
		{"a string is not an object", map[string]string{"app/main.jsonnet": `"x"`}, Options{}, nil,
			[]string{"app/main.jsonnet", "expected a Kubernetes object", "a string"}},
		{"an array item that is not an object", map[string]string{"app/main.jsonnet": `[{apiVersion: "v1", kind: "ConfigMap", metadata: {name: "a"}}, 1]`}, Options{}, nil,
			[]string{"app/main.jsonnet (item 1)", "expected a Kubernetes object"}},
		{"output over the size limit", map[string]string{"app/main.jsonnet": `{apiVersion: "v1", kind: "ConfigMap", metadata: {name: "big"}, data: {x: std.repeat("x", 5000)}}`}, Options{Limits: Limits{MaxFileBytes: 4096}}, ErrLimit,
			[]string{"app/main.jsonnet", "Jsonnet output", "4096"}},
		{"import over the size limit", map[string]string{"app/main.jsonnet": `importstr "big.txt"`, "app/big.txt": strings.Repeat("x", 5000)}, Options{Limits: Limits{MaxFileBytes: 4096}}, ErrLimit,
			[]string{"app/main.jsonnet:1:1", "app/big.txt", "4096"}},
		{"too many objects", map[string]string{"app/main.jsonnet": `[{apiVersion: "v1", kind: "ConfigMap", metadata: {name: "c" + i}} for i in std.range(1, 20)]`}, Options{Limits: Limits{MaxObjects: 10}}, ErrLimit,
			[]string{"more than 10 objects"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Root, tc.opts.Path = writeTree(t, tc.files), "app"
			start := time.Now()
			_, err := Render(t.Context(), tc.opts)
			if err == nil {
				t.Fatalf("rendered, want an error mentioning %q", tc.wants)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %s to refuse", d)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "root:") || strings.Contains(err.Error(), "RUNTIME ERROR") {
				t.Errorf("error %q holds go-jsonnet's own formatting", err)
			}
		})
	}
	t.Run("evaluation bounded by the context", func(t *testing.T) {
		// A slow loop that neither recurses nor allocates much (a tail-recursive
		// one grows the Go stack: the render process's stack limit ends it,
		// renderproc's TestJsonnetInAChild). go-jsonnet cannot be stopped:
		// the loop is short enough to finish after the test.
		r := writeTree(t, map[string]string{"app/main.jsonnet": `local s = std.repeat("x", 1 << 17);
{a: std.foldl(function(acc, i) std.md5(acc + s), std.range(1, 1000), "")}`})
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := Render(ctx, Options{Root: r, Path: "app"})
		if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "app/main.jsonnet") {
			t.Errorf("err = %v, want a limit error naming the file", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("took %s", d)
		}
	})
	if _, err := os.Stat(filepath.Join(outside, "secret.libsonnet")); err != nil {
		t.Fatal(err)
	}
}

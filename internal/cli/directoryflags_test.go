package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// keyless render takes Argo CD's directory and Jsonnet flags.
func TestRenderDirectoryFlags(t *testing.T) {
	root := t.TempDir()
	for name, body := range map[string]string{
		"app/a.yaml":       "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
		"app/b.yaml":       "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n",
		"app/sub/c.yaml":   "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
		"app/j.jsonnet":    `function(name, n) (import "k.libsonnet").cm(name) + {data: {env: std.extVar("env"), n: std.toString(std.extVar("n") + n)}}`,
		"libs/k.libsonnet": `{cm(name):: {apiVersion: "v1", kind: "ConfigMap", metadata: {name: name}}}`,
	} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	app := filepath.Join(root, "app")
	jsonnet := []string{"--jsonnet-libs", "libs", "--jsonnet-ext-var-str", "env=prod", "--jsonnet-ext-var-code", "n=40",
		"--jsonnet-tla-str", "name=from-jsonnet", "--jsonnet-tla-code", "n=1+1"}
	for _, tc := range []struct {
		name    string
		args    []string
		want    []string
		notWant []string
	}{
		{"default: no recursion, subfolder named", []string{"--directory-exclude", "*.jsonnet"}, []string{"name: a", "name: b"}, []string{"name: c"}},
		{"recurse", []string{"--directory-recurse", "--directory-exclude", "*.jsonnet"}, []string{"name: a", "name: c"}, nil},
		{"include braces", []string{"--directory-include", "{b.yaml,sub/c.yaml}", "--directory-recurse"}, []string{"name: b", "name: c"}, []string{"name: a"}},
		{"jsonnet", append([]string{"--directory-include", "*.jsonnet"}, jsonnet...), []string{"name: from-jsonnet", "env: prod", `"n": "42"`}, []string{"name: a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"render", app, "--root", root, "-n", "x"}, tc.args...)
			code, out, errOut := run(t.Context(), t, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			wantOutput(t, out, tc.want, tc.notWant)
		})
	}
	code, _, errOut := run(t.Context(), t, "render", app, "--root", root, "--directory-exclude", "*.jsonnet")
	if code != 0 || !strings.Contains(errOut, "app/sub") || !strings.Contains(errOut, "--directory-recurse") {
		t.Errorf("exit %d, stderr %q: want the left-out subfolder named with --directory-recurse", code, errOut)
	}
	code, _, errOut = run(t.Context(), t, "render", app, "--root", root, "--jsonnet-ext-var-str", "=x")
	if code == 0 || !strings.Contains(errOut, "--jsonnet-ext-var-str") {
		t.Errorf("exit %d, stderr %q: want a nameless variable refused naming the flag", code, errOut)
	}
	code, _, errOut = run(t.Context(), t, "render", app, "--root", root, "--jsonnet-libs", "../elsewhere", "--directory-include", "*.jsonnet")
	if code == 0 || !strings.Contains(errOut, "leaves the repository root") {
		t.Errorf("exit %d, stderr %q: want a library outside the root refused", code, errOut)
	}
}

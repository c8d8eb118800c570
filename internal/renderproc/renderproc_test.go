package renderproc

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keyless-cd/keyless/internal/render"
)

func TestMain(m *testing.M) {
	ServeIfWorker()
	os.Exit(m.Run())
}

func writeChart(t *testing.T, templates map[string]string) string {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{"app/Chart.yaml": "apiVersion: v2\nname: bomb\nversion: 0.1.0\n"}
	for name, content := range templates {
		files["app/templates/"+name] = content
	}
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func newRunner(t *testing.T, opts Options) *Runner {
	t.Helper()
	r, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRenderInAChildIsTheSameRender checks objects, kinds and sources come
// back from the child exactly as an in-process render gives them.
func TestRenderInAChildIsTheSameRender(t *testing.T) {
	for _, path := range []string{"plain", "helm", "kustomize/overlay"} {
		t.Run(path, func(t *testing.T) {
			opts := render.Options{Root: "../render/testdata", Path: path, Namespace: "demo"}
			want, err := render.Render(t.Context(), opts)
			if err != nil {
				t.Skipf("in-process render of %s: %v", path, err) // fixture layout, not this package's concern
			}
			got, err := newRunner(t, Options{}).Render(t.Context(), opts)
			if err != nil {
				t.Fatal(err)
			}
			if got.Kind != want.Kind || len(got.Objects) != len(want.Objects) {
				t.Fatalf("got %s with %d objects, want %s with %d", got.Kind, len(got.Objects), want.Kind, len(want.Objects))
			}
			for i := range want.Objects {
				if !reflect.DeepEqual(got.Objects[i].Object, want.Objects[i].Object) {
					t.Errorf("object %d differs:\n got %v\nwant %v", i, got.Objects[i].Object, want.Objects[i].Object)
				}
				if got.Source(got.Objects[i]) != want.Source(want.Objects[i]) {
					t.Errorf("source %q, want %q", got.Source(got.Objects[i]), want.Source(want.Objects[i]))
				}
			}
		})
	}
}

// TestRenderBombsEndOnlyTheirChild runs renders that would take gigabytes,
// spin for ever or print without end: each ends with a LimitError naming
// its flag, and this process carries on.
func TestRenderBombsEndOnlyTheirChild(t *testing.T) {
	cases := map[string]struct {
		templates map[string]string
		opts      Options
		limit     string
	}{
		"memory: a string doubled 40 times": {
			templates: map[string]string{"cm.yaml": `{{ $s := "xxxxxxxx" }}{{ range until 40 }}{{ $s = print $s $s }}{{ end }}{{ len $s }}`},
			opts:      Options{MemoryLimit: 256 << 20}, limit: "--render-memory-limit",
		},
		"memory: a Helm tpl recursion": {
			templates: map[string]string{"_r.tpl": `{{ define "r" }}{{ tpl (printf "{{ include \"r\" . }}%s" (repeat 1000 "x")) . }}{{ end }}`, "cm.yaml": `{{ include "r" . }}`},
			opts:      Options{MemoryLimit: 256 << 20}, limit: "--render-memory-limit",
		},
		"time: ten billion empty iterations": {
			templates: map[string]string{"cm.yaml": `{{ range until 100000 }}{{ range until 100000 }}{{ end }}{{ end }}`},
			opts:      Options{Timeout: 2 * time.Second}, limit: "--render-timeout",
		},
		"output: more objects than the cap": {
			templates: map[string]string{"cm.yaml": `{{ range until 500 }}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cm-{{ . }}}
data: {x: "{{ repeat 1000 "x" }}"}
{{ end }}`},
			opts: Options{MaxOutputBytes: 64 << 10}, limit: "--render-max-output",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			root := writeChart(t, tc.templates)
			_, err := newRunner(t, tc.opts).Render(t.Context(), render.Options{Root: root, Path: "app", Namespace: "x"})
			var le *render.LimitError
			if !errors.As(err, &le) || le.Limit != tc.limit {
				t.Fatalf("err = %v, want a LimitError for %s", err, tc.limit)
			}
			if !strings.Contains(err.Error(), "app") {
				t.Errorf("error %q does not name the path", err)
			}
		})
	}
}

// TestKustomizeAliasBombIsBounded: a YAML alias bomb in a kustomization's
// resource is refused or ends its child; either way, with an error.
func TestKustomizeAliasBombIsBounded(t *testing.T) {
	root := t.TempDir()
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\nx0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n")
	for i := 1; i < 12; i++ {
		b.WriteString("x" + itoa(i) + ": &a" + itoa(i) + " [")
		for j := range 9 {
			if j > 0 {
				b.WriteString(",")
			}
			b.WriteString("*a" + itoa(i-1))
		}
		b.WriteString("]\n")
	}
	for name, content := range map[string]string{"app/kustomization.yaml": "resources: [bomb.yaml]\n", "app/bomb.yaml": b.String()} {
		p := filepath.Join(root, name)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := newRunner(t, Options{MemoryLimit: 256 << 20, Timeout: 20 * time.Second}).Render(t.Context(), render.Options{Root: root, Path: "app"})
	if err == nil {
		t.Fatal("an alias bomb rendered")
	}
}

// TestErrorsKeepTheirTypeAcrossTheProcess checks errors.Is still tells a
// refused remote reference from a missing path after the child reports it.
func TestErrorsKeepTheirTypeAcrossTheProcess(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "app", "kustomization.yaml"), []byte("resources: [https://example.invalid/x.yaml]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := newRunner(t, Options{})
	if _, err := r.Render(t.Context(), render.Options{Root: root, Path: "app"}); !errors.Is(err, render.ErrRemoteReference) {
		t.Fatalf("err = %v, want ErrRemoteReference", err)
	}
	if _, err := r.Render(t.Context(), render.Options{Root: root, Path: "../outside"}); !errors.Is(err, render.ErrOutsideRoot) {
		t.Fatalf("err = %v, want ErrOutsideRoot", err)
	}
}

func itoa(i int) string { return string(rune('0'+i/10)) + string(rune('0'+i%10)) }

// waitSpare waits until r holds a started spare child.
func waitSpare(tb testing.TB, r *Runner) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for len(r.spare) == 0 {
		if time.Now().After(deadline) {
			tb.Fatal("no spare render process was started")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSpareRenderProcess: with Spare, a started process waits for the next
// render, serves it like a fresh one, and Close ends it.
func TestSpareRenderProcess(t *testing.T) {
	r := newRunner(t, Options{Spare: true})
	opts := render.Options{Root: "../render/testdata", Path: "plain", Namespace: "demo"}
	for range 3 {
		res, err := r.Render(t.Context(), opts)
		if err != nil || len(res.Objects) == 0 {
			t.Fatalf("render with a spare process: %v", err)
		}
		waitSpare(t, r)
	}
	// A spare still honours the limits it was started with.
	bomb := writeChart(t, map[string]string{"cm.yaml": `{{ range until 100000 }}{{ range until 100000 }}{{ end }}{{ end }}`})
	slow := newRunner(t, Options{Spare: true, Timeout: time.Second})
	if _, err := slow.Render(t.Context(), render.Options{Root: bomb, Path: "app"}); !errors.Is(err, render.ErrLimit) {
		t.Fatalf("err = %v, want a limit error", err)
	}
	waitSpare(t, slow)
	if _, err := slow.Render(t.Context(), render.Options{Root: bomb, Path: "app"}); !errors.Is(err, render.ErrLimit) {
		t.Fatalf("spare: err = %v, want a limit error", err)
	}
	slow.Close()
	r.Close()
	if len(r.spare) != 0 {
		t.Fatal("Close left a spare process")
	}
}

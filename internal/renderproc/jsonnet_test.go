package renderproc

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyless-cd/keyless/internal/render"
)

// TestJsonnetInAChild: Jsonnet renders in the child; unbounded recursion is
// refused by the stack-frame limit, and a tail-recursive loop (which
// go-jsonnet runs on the Go stack without counting frames) by the render
// process's stack limit (a limit error) — both naming the file, fast.
func TestJsonnetInAChild(t *testing.T) {
	r := newRunner(t, Options{Timeout: 30 * time.Second})
	for _, tc := range []struct {
		name, src string
		is        error
		want      string
	}{
		{"object", `{apiVersion: "v1", kind: "ConfigMap", metadata: {name: std.extVar("n")}}`, nil, ""},
		{"stack bomb", "local f(x) = f(x + 1);\nf(0)", ErrWorker, "app/main.jsonnet:1:14: max stack frames exceeded"},
		{"tail-recursive loop", "local f(x) = if x < 0 then x else f(x + 1) tailstrict;\n{a: f(0)}", render.ErrLimit, "app"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			if err := os.MkdirAll(filepath.Join(root, "app"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, "app", "main.jsonnet"), []byte(tc.src), 0o600); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			res, err := r.Render(t.Context(), render.Options{Root: root, Path: "app", Directory: render.DirectoryOptions{
				Jsonnet: render.JsonnetOptions{ExtVars: []render.JsonnetVar{{Name: "n", Value: "from-child"}}},
			}})
			if tc.is == nil {
				if err != nil || len(res.Objects) != 1 || res.Objects[0].GetName() != "from-child" || res.Source(res.Objects[0]) != "app/main.jsonnet" {
					t.Fatalf("render = %v, %v", res, err)
				}
				return
			}
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %v naming %s", err, tc.is, tc.want)
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("took %s to refuse", d)
			}
		})
	}
}

package confine

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tree makes root/app/{a.yaml,sub/b.yaml}, a link inside (app/in → app/a.yaml),
// links out (app/out → outside/secret, app/outdir → outside), and returns
// root (resolved) and the outside folder.
func tree(t *testing.T) (string, string) {
	t.Helper()
	base, err := Root(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	root, outside := filepath.Join(base, "repo"), filepath.Join(base, "outside")
	for _, d := range []string{filepath.Join(root, "app", "sub"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{filepath.Join(root, "app", "a.yaml"), filepath.Join(root, "app", "sub", "b.yaml"), filepath.Join(outside, "secret")} {
		if err := os.WriteFile(f, []byte("x: 1\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{"in": "a.yaml", "out": filepath.Join(outside, "secret"), "outdir": outside, "up": "../../outside/secret"}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, "app", name)); err != nil {
			t.Fatal(err)
		}
	}
	return root, outside
}

func TestJoin(t *testing.T) {
	root, _ := tree(t)
	app := filepath.Join(root, "app")
	for _, tc := range []struct {
		base, rel string
		want      string // relative to root; "" when an error is wanted
		err       error
	}{
		{base: root, rel: "app/a.yaml", want: "app/a.yaml"},
		{base: app, rel: "sub/b.yaml", want: "app/sub/b.yaml"},
		{base: app, rel: "sub/../a.yaml", want: "app/a.yaml"},
		{base: app, rel: "in", want: "app/a.yaml"},
		{base: root, rel: ".", want: "."},
		{base: app, rel: "../../outside/secret", err: ErrOutsideRoot},
		{base: root, rel: "/etc/passwd", err: ErrOutsideRoot},
		{base: app, rel: "out", err: ErrOutsideRoot},
		{base: app, rel: "up", err: ErrOutsideRoot},
		{base: app, rel: "outdir/secret", err: ErrOutsideRoot},
		{base: app, rel: "missing.yaml", err: fs.ErrNotExist},
	} {
		got, err := Join(root, tc.base, tc.rel)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("Join(%s, %q) = %q, %v; want %v", Rel(root, tc.base), tc.rel, got, err, tc.err)
			} else if !strings.Contains(err.Error(), tc.rel) {
				t.Errorf("Join(%q): error %q does not name the path", tc.rel, err)
			}
			continue
		}
		if err != nil || Rel(root, got) != tc.want {
			t.Errorf("Join(%s, %q) = %q, %v; want %s", Rel(root, tc.base), tc.rel, Rel(root, got), err, tc.want)
		}
	}
}

func TestLexicalDoesNotTouchTheFileSystem(t *testing.T) {
	root := filepath.FromSlash("/repo")
	for rel, want := range map[string]string{"a/b": "a/b", "a/../b": "b", "./a": "a", "..a": "..a"} {
		got, err := Lexical(root, root, rel)
		if err != nil || filepath.ToSlash(got) != want {
			t.Errorf("Lexical(%q) = %q, %v; want %q", rel, got, err, want)
		}
	}
	for _, rel := range []string{"..", "../x", "a/../../x", "/x"} {
		if got, err := Lexical(root, root, rel); !errors.Is(err, ErrOutsideRoot) {
			t.Errorf("Lexical(%q) = %q, %v; want ErrOutsideRoot", rel, got, err)
		}
	}
}

func TestNoSymlinks(t *testing.T) {
	root, _ := tree(t)
	r, err := os.OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Close() }()
	if err := NoSymlinks(r, filepath.Join("app", "sub", "b.yaml")); err != nil {
		t.Errorf("a plain path: %v", err)
	}
	// Even a link that stays inside is refused: writes must hit the file named.
	for _, rel := range []string{"app/in", "app/outdir/secret"} {
		if err := NoSymlinks(r, filepath.FromSlash(rel)); !errors.Is(err, ErrSymlink) {
			t.Errorf("NoSymlinks(%s) = %v, want ErrSymlink", rel, err)
		}
	}
	if err := NoSymlinks(r, "nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
}

func TestRootRefusesAFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Root(f); err == nil {
		t.Error("a file was taken as a root")
	}
}

// FuzzLexical: whatever the path, an accepted result stays below root.
func FuzzLexical(f *testing.F) {
	for _, s := range []string{"a/b", "../x", "a/../../x", "/abs", "a//b/./c", "..a/b", "a\x00b"} {
		f.Add(s)
	}
	root := filepath.FromSlash("/repo/root")
	f.Fuzz(func(t *testing.T, rel string) {
		got, err := Lexical(root, filepath.Join(root, "app"), rel)
		if err != nil {
			return
		}
		if !Within(root, filepath.Join(root, got)) || filepath.IsAbs(got) {
			t.Fatalf("Lexical(%q) = %q: outside %s", rel, got, root)
		}
	})
}

package render

import (
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzJsonnetImport: whatever an import names and wherever it is imported
// from, the importer returns only a file inside the root (never the secret
// beside it, reachable by "..", an absolute path or a symlink), and
// foundAt is a clean path relative to the root.
func FuzzJsonnetImport(f *testing.F) {
	for _, seed := range [][2]string{
		{"app/main.jsonnet", "lib.libsonnet"},
		{"app/main.jsonnet", "../secret.txt"},
		{"app/main.jsonnet", "../../secret.txt"},
		{"app/main.jsonnet", "/etc/passwd"},
		{"app/main.jsonnet", "link/secret.txt"},
		{"app/main.jsonnet", "out.libsonnet"},
		{"", "app/main.jsonnet"},
		{"", "../root/app/main.jsonnet"},
		{"app/sub/x.libsonnet", "..\\..\\..\\secret.txt"},
		{"../x", "lib.libsonnet"},
		{"app/main.jsonnet", "./././lib.libsonnet"},
		{"app/main.jsonnet", "k.libsonnet"},
	} {
		f.Add(seed[0], seed[1])
	}
	parent := f.TempDir()
	const secret = "the secret outside the root"
	if err := os.WriteFile(filepath.Join(parent, "secret.txt"), []byte(secret), 0o600); err != nil {
		f.Fatal(err)
	}
	root := filepath.Join(parent, "root")
	for name, content := range map[string]string{
		"app/main.jsonnet":    "{}",
		"app/lib.libsonnet":   "{}",
		"libs/k.libsonnet":    "{}",
		"app/sub/x.libsonnet": "{}",
	} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			f.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			f.Fatal(err)
		}
	}
	if err := os.Symlink(parent, filepath.Join(root, "app", "link")); err != nil {
		f.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(parent, "secret.txt"), filepath.Join(root, "app", "out.libsonnet")); err != nil {
		f.Fatal(err)
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = r.Close() })
	f.Fuzz(func(t *testing.T, from, imported string) {
		im := &jsonnetImporter{ctx: t.Context(), root: r, rootDir: root, jpaths: []string{"app", "libs"}, maxBytes: 1 << 20}
		c, foundAt, err := im.Import(from, imported)
		if err != nil {
			return
		}
		if strings.Contains(c.String(), secret) {
			t.Fatalf("Import(%q, %q) read the secret outside the root (foundAt %q)", from, imported, foundAt)
		}
		if foundAt != path.Clean(foundAt) || path.IsAbs(foundAt) || foundAt == ".." || strings.HasPrefix(foundAt, "../") {
			t.Fatalf("Import(%q, %q): foundAt %q is not clean and inside the root", from, imported, foundAt)
		}
	})
}

package helmrepo

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Retain deletes only archives no revision names and nothing used lately.
func TestRetainKeepsNamedAndRecentCharts(t *testing.T) {
	f := newTestFetcher(t, Options{})
	dir := filepath.Join(f.opts.CacheDir, chartsDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	for name, age := range map[string]time.Time{"sha256-aa.tgz": old, "sha256-bb.tgz": old, "sha256-cc.tgz": time.Now(), "README": old} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, age, age); err != nil {
			t.Fatal(err)
		}
	}
	n, err := f.Retain(map[string]bool{"sha256:aa": true}, time.Minute)
	if err != nil || n != 1 {
		t.Fatalf("Retain = %d, %v; want 1 deleted", n, err)
	}
	for name, want := range map[string]bool{"sha256-aa.tgz": true, "sha256-bb.tgz": false, "sha256-cc.tgz": true, "README": true} {
		if _, err := os.Stat(filepath.Join(dir, name)); (err == nil) != want {
			t.Errorf("%s kept = %v, want %v", name, err == nil, want)
		}
	}
}

package audit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOversizedFilesAreReported: a text file larger than MaxFileBytes is not
// scanned, and the scan says so (in the working tree, and in history with
// its commit) instead of returning a silent "clean"; a large binary file is
// not a text secret and is not reported.
func TestOversizedFilesAreReported(t *testing.T) {
	dir := t.TempDir()
	big := storedKubeconfig + strings.Repeat("# padding\n", MaxFileBytes/10+1)
	if err := os.WriteFile(filepath.Join(dir, "huge.yaml"), []byte(big), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "image.bin"), append([]byte{0x89, 'P', 'N', 'G', 0}, make([]byte, MaxFileBytes+10)...), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "small.yaml"), []byte("a: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	type skip struct {
		name, commit string
		size         int64
	}
	var got []skip
	opts := ScanOptions{Skipped: func(name, commit string, size int64) { got = append(got, skip{name, commit, size}) }}
	findings, err := ScanRepo(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(findings) != 0 {
		t.Fatalf("findings in files that were not to be scanned: %+v", findings)
	}
	if len(got) != 1 || got[0].name != "huge.yaml" || got[0].size != int64(len(big)) || got[0].commit != "" {
		t.Fatalf("skipped: %+v, want huge.yaml of %d bytes only", got, len(big))
	}

	// In history: committed, then deleted from the working tree.
	wt, commit := gitRepo(t, dir)
	added := commit("add")
	if _, err := wt.Remove("huge.yaml"); err != nil {
		t.Fatal(err)
	}
	commit("remove")
	got = nil
	if _, err := ScanHistory(dir, opts); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].name != "huge.yaml" || got[0].commit != added {
		t.Fatalf("history skipped: %+v, want huge.yaml @%s", got, added)
	}
}

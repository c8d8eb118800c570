package gitsource

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyless-cd/keyless/internal/gitserver"
)

// TestRetainDeletesUnusedRepositories: the bare repository and checkouts of
// a URL no Application reads any more are deleted — also those left by an
// earlier run — while kept URLs, recently used ones and checkouts being read
// stay; a deleted repository is fetched again when it is needed.
func TestRetainDeletesUnusedRepositories(t *testing.T) {
	ctx := t.Context()
	srv := startGitServer(t)
	cache := t.TempDir()
	src, err := New(Options{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	use := func(name string) (sha string, release func()) {
		t.Helper()
		if err := srv.CreateRepo(ctx, name, "main"); err != nil {
			t.Fatal(err)
		}
		sha, err := srv.Commit(ctx, name, gitserver.Commit{Files: map[string]string{"cm.yaml": "a: " + name + "\n"}})
		if err != nil {
			t.Fatal(err)
		}
		url := srv.RepoURL(name)
		rev, err := src.Resolve(ctx, url, "main", nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := src.Fetch(ctx, url, rev, nil); err != nil {
			t.Fatal(err)
		}
		_, release, err = src.Checkout(t.Context(), url, sha)
		if err != nil {
			t.Fatal(err)
		}
		return sha, release
	}
	_, releaseKept := use("kept")
	releaseKept()
	goneSHA, releaseGone := use("gone")
	releaseGone()
	_, releaseRead := use("read") // its checkout is still being read
	// A repository cached by an earlier run of the controller.
	stale := filepath.Join(cache, "repos", hashOf("https://git.example.com/old.git"))
	if err := os.MkdirAll(stale, 0o700); err != nil {
		t.Fatal(err)
	}

	removed, err := src.Retain([]string{srv.RepoURL("kept")}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if removed != 3 {
		t.Errorf("removed %d repositories, want 3 (gone, read, and the earlier run's)", removed)
	}
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	repoDir := func(name string) string { return filepath.Join(cache, "repos", hashOf(srv.RepoURL(name))) }
	checkouts := func(name string) []string {
		m, _ := filepath.Glob(filepath.Join(cache, "checkouts", hashOf(srv.RepoURL(name))+"-*"))
		var dirs []string
		for _, p := range m {
			if !strings.HasSuffix(p, treeSuffix) {
				dirs = append(dirs, p)
			}
		}
		return dirs
	}
	if !exists(repoDir("kept")) || len(checkouts("kept")) != 1 {
		t.Error("the kept repository or its checkout was deleted")
	}
	if exists(repoDir("gone")) || len(checkouts("gone")) != 0 || exists(stale) {
		t.Error("an unused repository, its checkout or an earlier run's repository is still cached")
	}
	if len(checkouts("read")) != 1 {
		t.Error("a checkout still being read was deleted under its reader")
	}
	releaseRead()

	// A URL used within the grace period is kept though the list lacks it
	// (its Application was created after the caller listed them).
	if _, err := src.Retain(nil, time.Hour); err != nil {
		t.Fatal(err)
	}
	if !exists(repoDir("kept")) {
		t.Error("a repository used within the grace period was deleted")
	}

	// Needed again: fetched and checked out anew.
	url := srv.RepoURL("gone")
	rev, err := src.Resolve(ctx, url, "main", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Fetch(ctx, url, rev, nil); err != nil {
		t.Fatalf("fetching a repository whose cache was deleted: %v", err)
	}
	dir, release, err := src.Checkout(t.Context(), url, goneSHA)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if b, err := os.ReadFile(filepath.Join(dir, "cm.yaml")); err != nil || string(b) != "a: gone\n" {
		t.Fatalf("checkout after a refetch: %q, %v", b, err)
	}
}

// TestRetainLeavesACheckoutBeingWritten: the folder a checkout is written
// (or patched) in before it is renamed into place is not deleted by Retain
// while it is written; a leftover of an earlier run is.
func TestRetainLeavesACheckoutBeingWritten(t *testing.T) {
	src, err := New(Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(src.opts.CacheDir, "checkouts")
	tmp, err := src.tempDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Retain(nil, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); err != nil {
		t.Fatalf("a checkout being written was deleted: %v", err)
	}
	src.releaseHold(tmp)
	if _, err := src.Retain(nil, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Fatalf("a leftover folder was kept: %v", err)
	}
}

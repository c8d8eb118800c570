package gitsource

import (
	"fmt"
	"maps"
	"testing"
	"time"
)

// TestCacheStartsAfreshPastMaxPacks: a repository fetched commit after
// commit never holds more than MaxPacks packs and one more (it starts
// afresh before the fetch that would pass it), every checkout holds its
// commit, every cached commit is complete, and a commit from before a
// fresh start is fetched again when asked for.
func TestCacheStartsAfreshPastMaxPacks(t *testing.T) {
	srv := startGitServer(t)
	if err := srv.CreateRepo(t.Context(), "app", "main"); err != nil {
		t.Fatal(err)
	}
	src, err := New(Options{CacheDir: t.TempDir(), LsRemoteTTL: time.Nanosecond, KeepCheckouts: 1, MaxPacks: 3})
	if err != nil {
		t.Fatal(err)
	}
	url := srv.RepoURL("app")
	model := map[string]modelEntry{"app/cm.yaml": {content: "v0\n"}, "other/keep.yaml": {content: "k\n"}}
	var first string
	var firstModel map[string]modelEntry
	freshStarts := 0
	last := 0
	for step := range 10 {
		model["app/cm.yaml"] = modelEntry{content: fmt.Sprintf("v%d\n", step)}
		sha, err := srv.CommitRaw(t.Context(), "app", "main", rawTree(model))
		if err != nil {
			t.Fatal(err)
		}
		if step == 0 {
			first, firstModel = sha, maps.Clone(model)
		}
		requireCheckout(t, srv, src, model, step)
		requireCacheComplete(t, src, url)
		n := src.repo(url).packCount()
		if n > 3+1 {
			t.Fatalf("step %d: the repository holds %d packs, want at most MaxPacks+1", step, n)
		}
		if n < last {
			freshStarts++
		}
		last = n
	}
	if freshStarts == 0 {
		t.Fatal("the repository never started afresh")
	}

	// The first commit's checkout is long gone and so are its objects.
	if err := src.Fetch(t.Context(), url, Revision{SHA: first}, nil); err != nil {
		t.Fatal(err)
	}
	dir, release, err := src.Checkout(t.Context(), url, first)
	if err != nil {
		t.Fatalf("a commit from before the fresh start: %v", err)
	}
	defer release()
	requireTree(t, dir, firstModel, -1)
	if c, err := src.CommitInfo(url, first); err != nil || c.SHA != first {
		t.Fatalf("commit info of %s: %+v, %v", first, c, err)
	}
}

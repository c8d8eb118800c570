package gitsource

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"

	"github.com/keyless-cd/keyless/internal/gitserver"
)

// serverRepo opens the test server's bare repository "app".
func serverRepo(t *testing.T, srv *gitserver.Server) *git.Repository {
	t.Helper()
	r, err := git.PlainOpen(filepath.Join(srv.Root(), "app.git"))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// setBranch moves the server's main to sha (a force-push); the zero hash
// deletes it, so that the next CommitRaw starts an unrelated history.
func setBranch(t *testing.T, srv *gitserver.Server, sha plumbing.Hash) {
	t.Helper()
	r := serverRepo(t, srv)
	name := plumbing.NewBranchReferenceName("main")
	var err error
	if sha.IsZero() {
		err = r.Storer.RemoveReference(name)
	} else {
		err = r.Storer.SetReference(plumbing.NewHashReference(name, sha))
	}
	if err != nil {
		t.Fatal(err)
	}
}

// repackWithBitmaps repacks the server's repository with a reachability
// bitmap, as large hosts keep theirs: upload-pack then leaves out every
// object reachable from a have, its whole history included (without one,
// git sends what the have's own tree lacks).
func repackWithBitmaps(t *testing.T, srv *gitserver.Server) {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "git", "-C", filepath.Join(srv.Root(), "app.git"), "repack", "-A", "-d", "-b", "-q").CombinedOutput()
	if err != nil {
		t.Fatalf("git repack: %v: %s", err, out)
	}
}

// noFileFolders drops the entries below a path the model holds as a file
// (a folder restored over a file, or the reverse).
func noFileFolders(model map[string]modelEntry) {
	for p := range model {
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if _, file := model[d]; file {
				delete(model, p)
				break
			}
		}
	}
}

// safeLinks drops the model's symlinks that do not name a file or folder
// of the model (a restore or a move can leave one dangling or chained,
// which a checkout refuses — recycle_test.go covers that).
func safeLinks(model map[string]modelEntry) {
	for p, e := range model {
		if !e.link {
			continue
		}
		target := path.Join(path.Dir(p), e.content)
		if te, ok := model[target]; ok && !te.link {
			continue
		}
		isDir := false
		for q, qe := range model {
			if strings.HasPrefix(q, target+"/") && !qe.link {
				isDir = true
				break
			}
		}
		if !isDir || target == "." || strings.HasPrefix(target, "..") {
			delete(model, p)
		}
	}
}

// requireCacheComplete fails unless every commit in the cache of url has
// every object of its tree: what fetch's "already here" relies on.
func requireCacheComplete(t *testing.T, src *Source, url string) {
	t.Helper()
	r, err := git.PlainOpen(src.repo(url).dir)
	if err != nil {
		t.Fatal(err)
	}
	iter, err := r.CommitObjects()
	if err != nil {
		t.Fatal(err)
	}
	err = iter.ForEach(func(c *object.Commit) error {
		tree, err := c.Tree()
		if err != nil {
			return fmt.Errorf("commit %s: %w", c.Hash, err)
		}
		return tree.Files().ForEach(func(f *object.File) error {
			if err := r.Storer.HasEncodedObject(f.Hash); err != nil {
				return fmt.Errorf("commit %s: %s: %w", c.Hash, f.Name, err)
			}
			return nil
		})
	})
	if err != nil && !errors.Is(err, storer.ErrStop) {
		t.Fatalf("a commit in the cache is incomplete: %v", err)
	}
}

// requireCheckout fails unless the checkout of the head of main holds
// exactly model.
func requireCheckout(t *testing.T, srv *gitserver.Server, src *Source, model map[string]modelEntry, step int) {
	t.Helper()
	requireTree(t, checkoutHead(t, srv, src), model, step)
}

// requireTree fails unless the checkout dir holds exactly model: files,
// permissions, symlinks, folders.
func requireTree(t *testing.T, dir string, model map[string]modelEntry, step int) {
	t.Helper()
	got, want := listTree(t, dir), wantTree(model)
	for p, w := range want {
		if got[p] != w {
			t.Errorf("step %d: %s is %q, want %q", step, p, got[p], w)
		}
	}
	for p, g := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("step %d: %s (%s) is not in the commit", step, p, g)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// TestIncrementalFetchesEqualFullOnes is the property test of incremental
// fetches: 80 random pushes — one to three commits each (edits, deletes,
// moves, symlinks, folders turned into files), a tree restored as it was
// some commits before (objects the server leaves out, taking the cache for
// holding the history it skipped), a force-push back to an older commit or
// to an unrelated history — and after each the checkout holds exactly the
// pushed commit and every commit in the cache has its whole tree. Most
// fetches take only the change; the restores fall back to a depth-1 fetch.
func TestIncrementalFetchesEqualFullOnes(t *testing.T) {
	srv, src := recyclingSource(t)
	url := srv.RepoURL("app")
	model := map[string]modelEntry{"README.md": {content: "hi\n"}, "base/cm.yaml": {content: "base\n"}}
	for i := range 4 {
		model[fmt.Sprintf("apps/app-%d/deploy.yaml", i)] = modelEntry{content: fmt.Sprintf("app %d\n", i)}
	}
	r := rand.New(rand.NewPCG(41, 7))
	type pushed struct {
		sha   plumbing.Hash
		model map[string]modelEntry
	}
	var history []pushed
	commit := func() {
		noFileFolders(model)
		safeLinks(model)
		sha, err := srv.CommitRaw(t.Context(), "app", "main", rawTree(model))
		if err != nil {
			t.Fatal(err)
		}
		history = append(history, pushed{plumbing.NewHash(sha), maps.Clone(model)})
	}
	// A history the cache never sees: its first fetch is shallow.
	for step := range 10 {
		mutate(r, model, -1-step)
		commit()
	}
	repackWithBitmaps(t, srv)
	requireCheckout(t, srv, src, model, 0)
	restores := 0
	for step := 1; step <= 80; step++ {
		switch op := r.IntN(10); {
		case op <= 1: // a tree, or a folder, restored as it was (often from before the first fetch)
			old := history[r.IntN(len(history)-2)].model
			if r.IntN(2) == 0 {
				old = history[r.IntN(10)].model
			}
			switch r.IntN(3) {
			case 0: // exactly: its root tree is one the server takes the cache for holding
				model = maps.Clone(old)
			case 1:
				model = maps.Clone(old)
				mutate(r, model, step)
			default:
				for p, e := range old {
					if strings.HasPrefix(p, "apps/") || strings.HasPrefix(p, "base/") {
						model[p] = e
					}
				}
				mutate(r, model, step)
			}
			commit()
			restores++
		case op == 2: // force-push back to an older commit
			old := history[r.IntN(len(history)-1)]
			setBranch(t, srv, old.sha)
			model = maps.Clone(old.model)
			history = append(history, old)
		case op == 3: // force-push to an unrelated history
			setBranch(t, srv, plumbing.ZeroHash)
			mutate(r, model, step)
			commit()
		default: // one to three commits in one push
			for range 1 + r.IntN(3) {
				mutate(r, model, step)
				commit()
			}
		}
		if r.IntN(4) == 0 {
			repackWithBitmaps(t, srv)
		}
		requireCheckout(t, srv, src, model, step)
		requireCacheComplete(t, src, url)
	}
	changes, refused := src.changeFetches.Load(), src.refusedPacks.Load()
	t.Logf("%d of 80 fetches took only the change; %d restores, %d packs refused as incomplete", changes, restores, refused)
	if refused < 2 {
		t.Errorf("%d packs refused as incomplete, want some: the test does not exercise the check", refused)
	}
	if restores < 10 {
		t.Errorf("%d restores, want some", restores)
	}
	if changes < 30 {
		t.Errorf("%d of 80 fetches took only the change, want most", changes)
	}
}

// TestIncrementalFetchFallsBackForARestoredFile: a file restored to a
// content only an older commit had (never fetched: the cache is shallow)
// is left out by the server; the pack is refused, the commit fetched at
// depth 1, and the checkout holds the restored file. So is a commit pushed
// with a later one: pinned by SHA afterwards, it is complete.
func TestIncrementalFetchFallsBackForARestoredFile(t *testing.T) {
	srv, src := recyclingSource(t)
	url := srv.RepoURL("app")
	model := map[string]modelEntry{"app/cm.yaml": {content: "v1\n"}, "other.yaml": {content: "o\n"}}
	if _, err := srv.CommitRaw(t.Context(), "app", "main", rawTree(model)); err != nil {
		t.Fatal(err)
	}
	model["app/cm.yaml"] = modelEntry{content: "v2\n"}
	if _, err := srv.CommitRaw(t.Context(), "app", "main", rawTree(model)); err != nil {
		t.Fatal(err)
	}
	requireCheckout(t, srv, src, model, 1) // the cache never held v1

	model["app/cm.yaml"] = modelEntry{content: "v1\n"}
	if _, err := srv.CommitRaw(t.Context(), "app", "main", rawTree(model)); err != nil {
		t.Fatal(err)
	}
	repackWithBitmaps(t, srv)
	requireCheckout(t, srv, src, model, 2)
	if n := src.changeFetches.Load(); n != 0 {
		t.Errorf("the restore was taken as a change (%d): the server left v1 out", n)
	}

	model["other.yaml"] = modelEntry{content: "o2\n"}
	if _, err := srv.CommitRaw(t.Context(), "app", "main", rawTree(model)); err != nil {
		t.Fatal(err)
	}
	requireCheckout(t, srv, src, model, 3)
	if n := src.changeFetches.Load(); n != 1 {
		t.Errorf("a one-file change took %d incremental fetches, want 1", n)
	}

	// Two commits in one push, the first restoring v2 (which the cache
	// lost with nothing: it still holds it) and a file only the very first
	// commit had, the second changing it again.
	restored := maps.Clone(model)
	restored["app/cm.yaml"] = modelEntry{content: "v2\n"}
	restored["other.yaml"] = modelEntry{content: "o\n"}
	mid, err := srv.CommitRaw(t.Context(), "app", "main", rawTree(restored))
	if err != nil {
		t.Fatal(err)
	}
	model = maps.Clone(restored)
	model["other.yaml"] = modelEntry{content: "o3\n"}
	if _, err := srv.CommitRaw(t.Context(), "app", "main", rawTree(model)); err != nil {
		t.Fatal(err)
	}
	repackWithBitmaps(t, srv)
	requireCheckout(t, srv, src, model, 4)
	requireCacheComplete(t, src, url)
	if err := src.Fetch(t.Context(), url, Revision{SHA: mid}, nil); err != nil {
		t.Fatal(err)
	}
	dir, release, err := src.Checkout(t.Context(), url, mid)
	if err != nil {
		t.Fatalf("the commit pushed with a later one: %v", err)
	}
	defer release()
	got, want := listTree(t, dir), wantTree(restored)
	for p, w := range want {
		if got[p] != w {
			t.Errorf("pinned %s: %s is %q, want %q", mid, p, got[p], w)
		}
	}
}

// TestIncrementalFetchOfHEAD: an Application following the server's HEAD
// (no branch named; resolved to the branch the server names for it) takes
// only the change too, and gets the commit. (A HEAD the server does not
// name a branch for stays "HEAD", resolved in the advertisement again.)
func TestIncrementalFetchOfHEAD(t *testing.T) {
	srv, src := recyclingSource(t)
	url := srv.RepoURL("app")
	fetchHEAD := func(content string) {
		t.Helper()
		if _, err := srv.Commit(t.Context(), "app", gitserver.Commit{Files: map[string]string{"cm.yaml": content}, Message: "c"}); err != nil {
			t.Fatal(err)
		}
		rev, err := src.Resolve(t.Context(), url, "HEAD", nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := src.Fetch(t.Context(), url, rev, nil); err != nil {
			t.Fatal(err)
		}
		dir, release, err := src.Checkout(t.Context(), url, rev.SHA)
		if err != nil {
			t.Fatal(err)
		}
		defer release()
		if got := listTree(t, dir)["cm.yaml"]; got != fmt.Sprintf("file 444 %q", content) {
			t.Fatalf("cm.yaml is %s, want %q", got, content)
		}
	}
	fetchHEAD("v1\n")
	fetchHEAD("v2\n")
	if n := src.changeFetches.Load(); n != 1 {
		t.Errorf("the second commit of HEAD took %d incremental fetches, want 1", n)
	}
}

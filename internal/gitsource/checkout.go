package gitsource

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// Checkouts: one read-only directory per commit, held while in use, the
// most recent kept, trusted by a tree record.

// Checkout returns a folder holding the files of commit sha (fetched before),
// written once and then shared; treat it as read-only, and call release when
// done reading it. Checkouts of a repository beyond the KeepCheckouts most
// recently used, and not in use, are deleted.
//
// ctx stops a checkout being written (between files); a checkout already
// written is returned whatever ctx says.
func (s *Source) Checkout(ctx context.Context, url, sha string) (dir string, release func(), err error) {
	dir = filepath.Join(s.opts.CacheDir, "checkouts", hashOf(url)+"-"+sha)
	s.hold(dir)
	release = func() { s.releaseCheckout(url, dir) }
	if err := s.writeCheckout(ctx, url, sha, dir); err != nil {
		release()
		return "", nil, redactErr(url, err)
	}
	return dir, release, nil
}

func (s *Source) hold(dir string) {
	s.coMu.Lock()
	s.inUse[dir]++
	s.lastUsed[dir] = time.Now()
	s.coMu.Unlock()
}

// releaseCheckout drops a hold on dir, then deletes the repository's
// checkouts that are neither in use nor among the most recently used.
func (s *Source) releaseCheckout(url, dir string) {
	s.coMu.Lock()
	defer s.coMu.Unlock()
	if s.inUse[dir]--; s.inUse[dir] <= 0 {
		delete(s.inUse, dir)
	}
	root := filepath.Join(s.opts.CacheDir, "checkouts")
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	prefix := hashOf(url) + "-"
	var dirs []string
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), prefix) {
			dirs = append(dirs, filepath.Join(root, e.Name()))
		}
	}
	// Most recently used first; checkouts from before a restart are oldest.
	sort.Slice(dirs, func(i, j int) bool { return s.lastUsed[dirs[i]].After(s.lastUsed[dirs[j]]) })
	for i, d := range dirs {
		if i < s.opts.KeepCheckouts || s.inUse[d] > 0 {
			continue
		}
		if err := removeCheckout(d); err == nil {
			s.forget(d)
		}
	}
}

// writeCheckout writes the files of sha into dir unless a checkout of the
// same tree is there. A folder is trusted only when the record beside it
// (dir + ".tree", written after the folder was complete) names the commit's
// tree; anything else in its place is deleted and written anew.
func (s *Source) writeCheckout(ctx context.Context, url, sha, dir string) error {
	if s.trusted(dir) {
		return nil
	}
	repo, unlock, err := s.openLocked(url)
	if err != nil {
		return err
	}
	defer unlock()
	c, err := repo.CommitObject(plumbing.NewHash(sha))
	if err != nil {
		return fmt.Errorf("commit %s: %w", sha, err)
	}
	tree, err := c.Tree()
	if err != nil {
		return fmt.Errorf("commit %s: %w", sha, err)
	}
	if rec, err := os.ReadFile(dir + treeSuffix); err == nil && string(rec) == tree.Hash.String() {
		if fi, err := os.Lstat(dir); err == nil && fi.IsDir() {
			s.trust(dir)
			return nil
		}
	}
	_ = os.Remove(dir + treeSuffix)
	if err := removeTree(dir); err != nil {
		return fmt.Errorf("removing a stale checkout %s: %w", dir, err)
	}
	// The checkout the cache would delete next, patched into this one;
	// else (none, or it failed: a tree it refuses is refused below too)
	// written in full.
	if s.recycle(ctx, repo.Storer, url, dir, tree) {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("checking out %s: %w", sha, err)
	}
	parent := filepath.Join(s.opts.CacheDir, "checkouts")
	tmp, err := s.tempDir(parent)
	if err != nil {
		return err
	}
	defer s.releaseHold(tmp)
	var reused *reuse
	if prev, prevTree := s.previousCheckout(repo.Storer, url, dir); prev != "" {
		defer s.releaseHold(prev)
		if r, rerr := openReuse(parent, prev, prevTree); rerr == nil {
			reused = r
			defer func() { _ = r.parent.Close() }()
		}
	}
	stats, err := writeTree(ctx, repo.Storer, tree, tmp, s.opts.MaxCheckoutFiles, s.opts.MaxCheckoutBytes, reused)
	if err != nil {
		_ = removeTree(tmp)
		return fmt.Errorf("checking out %s: %w", sha, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		_ = removeTree(tmp)
		return err
	}
	return s.finish(dir, stats)
}

// finish makes the complete checkout dir read-only, records its tree
// beside it and trusts it.
func (s *Source) finish(dir string, stats *checkoutStats) error {
	if err := os.Chmod(dir, 0o555); err != nil {
		return err
	}
	if err := os.WriteFile(dir+treeSuffix, []byte(stats.tree.String()), 0o400); err != nil {
		return fmt.Errorf("recording checkout %s: %w", dir, err)
	}
	s.coMu.Lock()
	s.verified[dir] = true
	s.stats[dir] = stats
	s.coMu.Unlock()
	return nil
}

// writeTree writes tree into the empty folder dir, confined to it, with at
// most maxFiles files and maxBytes bytes, and says what it wrote.
func writeTree(ctx context.Context, store storer.EncodedObjectStorer, tree *object.Tree, dir string, maxFiles int, maxBytes int64, prev *reuse) (*checkoutStats, error) {
	root, top, closeAll, err := openCheckout(dir)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	w := &treeWriter{ctx: ctx, store: store, root: root, maxFiles: maxFiles, maxBytes: maxBytes, prev: prev}
	var prevTree *object.Tree
	prevFd := noDir
	if prev != nil {
		// The previous checkout's folder, opened through the cache's root.
		if f, err := prev.parent.Open(prev.from); err == nil {
			defer func() { _ = f.Close() }()
			prevTree, prevFd = prev.tree, int(f.Fd())
		}
	}
	if err := w.write(tree, prevTree, ".", int(top.Fd()), prevFd, 0); err != nil {
		return nil, err
	}
	if err := w.checkLinks(); err != nil {
		return nil, err
	}
	return &checkoutStats{tree: tree.Hash, files: w.files, bytes: w.bytes, links: w.links}, nil
}

// openCheckout opens dir as the root every write of a checkout is
// confined to, and its top folder.
func openCheckout(dir string) (*os.Root, *os.File, func(), error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, nil, nil, err
	}
	top, err := root.Open(".")
	if err != nil {
		_ = root.Close()
		return nil, nil, nil, err
	}
	return root, top, func() { _ = top.Close(); _ = root.Close() }, nil
}

// tempDir makes the folder a checkout is written in before it is renamed
// into place, held until the caller's releaseHold: Retain, which deletes
// what no Application reads, leaves a held folder alone.
func (s *Source) tempDir(parent string) (string, error) {
	tmp, err := os.MkdirTemp(parent, ".tmp-")
	if err != nil {
		return "", err
	}
	s.coMu.Lock()
	s.inUse[tmp]++
	s.coMu.Unlock()
	return tmp, nil
}

// trusted reports a checkout this process wrote or verified.
func (s *Source) trusted(dir string) bool {
	s.coMu.Lock()
	defer s.coMu.Unlock()
	return s.verified[dir]
}

func (s *Source) trust(dir string) {
	s.coMu.Lock()
	s.verified[dir] = true
	s.coMu.Unlock()
}

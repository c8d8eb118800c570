package gitsource

import (
	"fmt"
	"os"
	"path"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"golang.org/x/sys/unix"
)

// Checkout reuse. A new commit of a monorepo changes a few files of
// thousands; its checkout hard-links every file whose path, mode and blob
// are those of the same path in the repository's previous checkout (one
// this process wrote or verified against its tree record) instead of
// reading the blob and writing it again. Both checkouts are read-only
// folders of the same cache; the links are made through an os.Root on
// that cache, so no path of either can lead outside it, and a file that
// cannot be linked is written as before.

// reuse is the previous checkout a checkout links from.
type reuse struct {
	parent *os.Root // the checkouts folder
	from   string   // the previous checkout's name in it
	tree   *object.Tree
}

// entry is the entry named name of prev (a tree of the previous checkout),
// or nil.
func (r *reuse) entry(prev *object.Tree, name string) *object.TreeEntry {
	if r == nil || prev == nil {
		return nil
	}
	for i := range prev.Entries {
		if prev.Entries[i].Name == name {
			return &prev.Entries[i]
		}
	}
	return nil
}

// subtree is the tree of prev when it is a folder (nil otherwise).
func (r *reuse) subtree(store storer.EncodedObjectStorer, prev *object.TreeEntry) *object.Tree {
	if r == nil || prev == nil || prev.Mode != filemode.Dir {
		return nil
	}
	t, err := object.GetTree(store, prev.Hash)
	if err != nil {
		return nil
	}
	return t
}

// same says whether the file e is what prev was in the previous checkout.
func (r *reuse) same(e object.TreeEntry, prev *object.TreeEntry) bool {
	return r != nil && prev != nil && prev.Mode == e.Mode && prev.Hash == e.Hash
}

// link hard-links file base (name in the checkout) of the folder open as
// prevFd in the previous checkout into the folder open as fd; false when
// it could not (the caller writes the file). Only a regular file is
// linked, never a link.
func (w *treeWriter) link(base, name string, fd, prevFd int) (bool, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(prevFd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return false, nil //nolint:nilerr // not linkable: the caller writes the file
	}
	if err := w.count(name, st.Size); err != nil {
		return true, err
	}
	if err := unix.Linkat(prevFd, base, fd, base, 0); err != nil {
		w.files--
		w.bytes -= st.Size
		return false, nil //nolint:nilerr // not linkable: the caller writes the file
	}
	w.linked++
	return true, nil
}

// previousCheckout is the most recently used checkout of url this process
// wrote or verified, other than dir, held for the caller (release it with
// releaseCheckout), with its tree; "" when there is none.
func (s *Source) previousCheckout(store storer.EncodedObjectStorer, url, dir string) (string, *object.Tree) {
	prefix := path.Join(s.opts.CacheDir, "checkouts", hashOf(url)+"-")
	s.coMu.Lock()
	best := ""
	for d := range s.verified {
		if d != dir && len(d) > len(prefix) && d[:len(prefix)] == prefix && (best == "" || s.lastUsed[d].After(s.lastUsed[best])) {
			best = d
		}
	}
	if best != "" {
		s.inUse[best]++
	}
	s.coMu.Unlock()
	if best == "" {
		return "", nil
	}
	rec, err := os.ReadFile(best + treeSuffix)
	if err != nil {
		s.releaseHold(best)
		return "", nil
	}
	t, err := object.GetTree(store, plumbing.NewHash(string(rec)))
	if err != nil {
		s.releaseHold(best)
		return "", nil
	}
	return best, t
}

// releaseHold drops a hold taken by previousCheckout.
func (s *Source) releaseHold(dir string) {
	s.coMu.Lock()
	defer s.coMu.Unlock()
	if s.inUse[dir]--; s.inUse[dir] <= 0 {
		delete(s.inUse, dir)
	}
}

// openReuse opens the checkouts folder for links from prev.
func openReuse(parent, prev string, tree *object.Tree) (*reuse, error) {
	r, err := os.OpenRoot(parent)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", parent, err)
	}
	return &reuse{parent: r, from: path.Base(prev), tree: tree}, nil
}

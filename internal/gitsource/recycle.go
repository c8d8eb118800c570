package gitsource

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"golang.org/x/sys/unix"
)

// Checkout recycling. A new commit of a monorepo changes a few files of
// thousands, and the cache is about to delete its least recently used
// checkout of the repository (beyond KeepCheckouts). Instead of deleting
// that folder and writing the new commit's thousands of files and folders,
// the folder is taken out of use, renamed, and patched into the new
// commit's checkout: a subtree whose Git hash is unchanged is not visited
// at all, a changed file is replaced (unlinked and written anew, never
// rewritten in place: files are hard-linked between checkouts), a removed
// entry is deleted, a new one written as in a full checkout. The cost is
// that of the change, not of the repository.
//
// The same guarantees as a full checkout hold: every entry of a changed
// folder is checked again (names, duplicates, lengths, depth), every
// write goes through its folder's descriptor without following links,
// every symlink of the result (not only the new ones) is resolved inside
// the checkout once it is complete, and the file and byte limits are
// checked on the result. Only a folder this process wrote, whose content
// it therefore knows (checkoutStats), is recycled; on any failure the
// folder is deleted and the commit written in full.

// checkoutStats is what a checkout this process wrote holds.
type checkoutStats struct {
	tree  plumbing.Hash
	files int
	bytes int64
	links []string // every symlink, as slash paths in the checkout
}

// recycle writes the checkout of tree at dir by patching the checkout of
// url the cache would delete next. It returns false, having written
// nothing at dir, when there is none or patching failed (the folder is
// then deleted); the caller then writes dir in full, which reports a
// tree it refuses.
func (s *Source) recycle(ctx context.Context, store storer.EncodedObjectStorer, url, dir string, tree *object.Tree) bool {
	victim, stats := s.takeVictim(url, dir)
	if victim == "" {
		return false
	}
	old, err := object.GetTree(store, stats.tree)
	if err != nil {
		_ = removeCheckout(victim)
		return false
	}
	// The record first: a folder without it is never trusted.
	if err := os.Remove(victim + treeSuffix); err != nil {
		_ = removeTree(victim)
		return false
	}
	tmp, err := s.tempDir(filepath.Dir(victim))
	if err != nil {
		_ = removeTree(victim)
		return false
	}
	defer s.releaseHold(tmp)
	// rename(2) replaces the empty folder (os.Rename refuses to).
	if err := unix.Rename(victim, tmp); err != nil {
		_ = removeTree(victim)
		_ = os.Remove(tmp)
		return false
	}
	next, err := patchTree(ctx, store, tree, old, tmp, s.opts.MaxCheckoutFiles, s.opts.MaxCheckoutBytes, stats)
	if err == nil {
		err = os.Rename(tmp, dir)
	}
	if err != nil {
		_ = removeTree(tmp)
		return false
	}
	if err := s.finish(dir, next); err != nil {
		_ = removeCheckout(dir)
		return false
	}
	return true
}

// takeVictim picks, among the checkouts of url other than dir, the one
// releaseCheckout would delete once dir is added (beyond the KeepCheckouts
// most recently used), not in use and written by this process, and takes
// it out of the cache: from here on nobody trusts or holds it.
func (s *Source) takeVictim(url, dir string) (string, *checkoutStats) {
	prefix := filepath.Join(s.opts.CacheDir, "checkouts", hashOf(url)+"-")
	s.coMu.Lock()
	defer s.coMu.Unlock()
	var dirs []string
	for d := range s.verified {
		if d != dir && strings.HasPrefix(d, prefix) {
			dirs = append(dirs, d)
		}
	}
	sort.Slice(dirs, func(i, j int) bool { return s.lastUsed[dirs[i]].After(s.lastUsed[dirs[j]]) })
	// dir will be the most recently used: the existing ones from index
	// KeepCheckouts-1 on are the ones the cache deletes after it.
	for i := len(dirs) - 1; i >= s.opts.KeepCheckouts-1 && i >= 0; i-- {
		d := dirs[i]
		if st := s.stats[d]; st != nil && s.inUse[d] == 0 {
			s.forget(d)
			return d, st
		}
	}
	return "", nil
}

// forget drops what the cache knows of checkout d. coMu held.
func (s *Source) forget(d string) {
	delete(s.lastUsed, d)
	delete(s.verified, d)
	delete(s.stats, d)
}

// patchTree turns dir, the checkout of tree old holding what stats says,
// into the checkout of tree t, and returns what it then holds.
func patchTree(ctx context.Context, store storer.EncodedObjectStorer, t, old *object.Tree, dir string, maxFiles int, maxBytes int64, stats *checkoutStats) (*checkoutStats, error) {
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	root, top, closeAll, err := openCheckout(dir)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	// A change replacing entries holds both for a moment: bounded by
	// twice the limits while patching, by the limits once done.
	w := &treeWriter{ctx: ctx, store: store, root: root, maxFiles: maxFiles + stats.files, maxBytes: maxBytes + stats.bytes, files: stats.files, bytes: stats.bytes}
	kept := make(map[string]struct{}, len(stats.links))
	for _, l := range stats.links {
		kept[l] = struct{}{}
	}
	w.oldLinks = kept
	if err := w.patch(t, old, ".", int(top.Fd()), 0); err != nil {
		return nil, err
	}
	if w.files > maxFiles {
		return nil, fmt.Errorf("more than %d files: %w", maxFiles, ErrCheckoutTooLarge)
	}
	if w.bytes > maxBytes {
		return nil, fmt.Errorf("more than %d bytes: %w", maxBytes, ErrCheckoutTooLarge)
	}
	for l := range kept {
		w.links = append(w.links, l)
	}
	sort.Strings(w.links)
	if err := w.checkLinks(); err != nil {
		return nil, err
	}
	return &checkoutStats{tree: t.Hash, files: w.files, bytes: w.bytes, links: w.links}, nil
}

// patch turns folder dir ("." for the root), open as fd and holding tree
// old, into tree t.
func (w *treeWriter) patch(t, old *object.Tree, dir string, fd, depth int) error {
	next, err := checkFolder(t, dir, depth)
	if err != nil {
		return err
	}
	prev := make(map[string]*object.TreeEntry, len(old.Entries))
	for i, o := range old.Entries {
		prev[o.Name] = &old.Entries[i]
		if n := next[o.Name]; n != nil && (unchanged(*n, o) || n.Mode == filemode.Dir && o.Mode == filemode.Dir) {
			continue
		}
		if o.Mode == filemode.Submodule {
			continue // never written
		}
		if err := w.removeAt(fd, o.Name, path.Join(dir, o.Name)); err != nil {
			return err
		}
	}
	for _, e := range t.Entries {
		o, name := prev[e.Name], path.Join(dir, e.Name)
		switch {
		case o != nil && unchanged(e, *o):
		case o != nil && o.Mode == filemode.Dir && e.Mode == filemode.Dir:
			if err := w.patchDir(e, *o, name, fd, depth); err != nil {
				return err
			}
		default:
			if err := w.entry(e, nil, name, fd, noDir, depth); err != nil {
				return err
			}
		}
	}
	return nil
}

// unchanged says whether entry e of the new tree is o of the old one.
func unchanged(e, o object.TreeEntry) bool {
	return e.Mode == o.Mode && e.Hash == o.Hash
}

// patchDir patches folder e (o before) of the folder open as fd.
func (w *treeWriter) patchDir(e, o object.TreeEntry, name string, fd, depth int) error {
	if err := w.ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	sub, err := object.GetTree(w.store, e.Hash)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	was, err := object.GetTree(w.store, o.Hash)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	subFd, err := openDir(fd, e.Name)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer func() { _ = unix.Close(subFd) }()
	if err := unix.Fchmod(subFd, 0o755); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := w.patch(sub, was, name, subFd, depth+1); err != nil {
		return err
	}
	if err := unix.Fchmod(subFd, 0o555); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// removeAt deletes entry base (name in the checkout) of the folder open as
// fd — a folder with everything in it — never following a link, and takes
// what it held off the writer's counts.
func (w *treeWriter) removeAt(fd int, base, name string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(fd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := w.emptyDir(fd, base, name); err != nil {
			return err
		}
		if err := unix.Unlinkat(fd, base, unix.AT_REMOVEDIR); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	case unix.S_IFLNK:
		delete(w.oldLinks, name)
	}
	if err := unix.Unlinkat(fd, base, 0); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	w.files--
	if st.Mode&unix.S_IFMT == unix.S_IFREG {
		w.bytes -= st.Size
	}
	return nil
}

// emptyDir deletes everything in folder base of the folder open as fd.
func (w *treeWriter) emptyDir(fd int, base, name string) error {
	sub, err := openDir(fd, base)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	f := os.NewFile(uintptr(sub), name)
	defer func() { _ = f.Close() }()
	if err := unix.Fchmod(sub, 0o700); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	entries, err := f.ReadDir(-1)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	for _, e := range entries {
		if err := w.removeAt(sub, e.Name(), path.Join(name, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

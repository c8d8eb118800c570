package gitsource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"golang.org/x/sys/unix"

	"github.com/keyless-cd/keyless/internal/confine"
)

// ErrUnsafeTree is returned (wrapped) when a commit's tree holds an entry
// that cannot be checked out safely: a duplicate or malformed name, a symlink
// leaving the checkout, a tree nested too deep. The error names the entry.
var ErrUnsafeTree = errors.New("unsafe tree")

// ErrCheckoutTooLarge is returned (wrapped) when a commit holds more files or
// bytes than Options.MaxCheckoutFiles / MaxCheckoutBytes.
var ErrCheckoutTooLarge = errors.New("checkout too large")

// Limits of one tree that are not options: deeper nesting or longer names
// than any real repository uses are refused.
const (
	maxTreeDepth     = 64
	maxPathBytes     = 4096
	maxSymlinkTarget = 4096
)

// treeSuffix names the file beside a finished checkout that records the tree
// it holds; a checkout folder without a matching record is never trusted.
const treeSuffix = ".tree"

// treeWriter writes one commit's tree below root. Every entry is written
// relative to its folder's descriptor, opened without following links
// below root (an os.Root) — with a single-component name Git's tree
// allows (checkEntryName: no '/', no '..'), never following a link — so no
// entry, symlink or crafted name can make it write outside the checkout,
// whatever the tree holds. One descriptor per folder, not a walk from the
// root per file: a checkout of thousands of files makes a few system calls
// per file.
type treeWriter struct {
	ctx      context.Context // stops the write between entries
	store    storer.EncodedObjectStorer
	root     *os.Root
	maxFiles int
	maxBytes int64

	// prev, when set, is an earlier checkout of the same repository: a
	// file with the same path, mode and blob there is hard-linked instead
	// of written (reuse.go).
	prev   *reuse
	linked int // files linked from prev

	files int
	bytes int64
	links []string // symlinks written, resolved once the whole tree is there

	// oldLinks, when patching a recycled checkout (recycle.go), are its
	// symlinks not yet removed.
	oldLinks map[string]struct{}
}

// noDir is the descriptor of a folder that is not there (prev has none).
const noDir = -1

// write writes tree t into folder dir ("." for the root) of the checkout,
// open as fd; prev is the same folder's tree in w.prev's checkout, open as
// prevFd (nil and noDir: none). Each folder is made read-only once its
// entries are written.
func (w *treeWriter) write(t, prev *object.Tree, dir string, fd, prevFd, depth int) error {
	if _, err := checkFolder(t, dir, depth); err != nil {
		return err
	}
	for _, e := range t.Entries {
		if err := w.entry(e, w.prev.entry(prev, e.Name), path.Join(dir, e.Name), fd, prevFd, depth); err != nil {
			return err
		}
	}
	return nil
}

// checkFolder checks folder dir's tree t before anything of it is written
// (its depth, each entry's name, a name twice, a path's length) and
// returns its entries by name.
func checkFolder(t *object.Tree, dir string, depth int) (map[string]*object.TreeEntry, error) {
	if depth > maxTreeDepth {
		return nil, fmt.Errorf("%s: nested deeper than %d folders: %w", dir, maxTreeDepth, ErrUnsafeTree)
	}
	byName := make(map[string]*object.TreeEntry, len(t.Entries))
	for i, e := range t.Entries {
		name := path.Join(dir, e.Name)
		if err := checkEntryName(e.Name); err != nil {
			return nil, fmt.Errorf("entry %q in %s: %w", e.Name, dir, err)
		}
		if _, dup := byName[e.Name]; dup {
			return nil, fmt.Errorf("%s: the tree holds this name twice: %w", name, ErrUnsafeTree)
		}
		if len(name) > maxPathBytes {
			return nil, fmt.Errorf("%s…: path longer than %d bytes: %w", name[:64], maxPathBytes, ErrUnsafeTree)
		}
		byName[e.Name] = &t.Entries[i]
	}
	return byName, nil
}

func (w *treeWriter) entry(e object.TreeEntry, prev *object.TreeEntry, name string, fd, prevFd, depth int) error {
	if err := w.ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	switch e.Mode {
	case filemode.Dir:
		return w.dir(e, prev, name, fd, prevFd, depth)
	case filemode.Submodule:
		return nil // not followed, like a checkout without --recurse-submodules
	case filemode.Symlink:
		if err := w.count(name, 0); err != nil {
			return err
		}
		target, err := w.blob(e.Hash, maxSymlinkTarget)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := checkSymlink(name, string(target)); err != nil {
			return err
		}
		if err := unix.Symlinkat(string(target), fd, e.Name); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		w.links = append(w.links, name)
		return nil
	case filemode.Regular, filemode.Executable, filemode.Deprecated:
		if w.prev.same(e, prev) && prevFd != noDir {
			if linked, err := w.link(e.Name, name, fd, prevFd); linked || err != nil {
				return err
			}
		}
		return w.file(e, name, fd)
	}
	return fmt.Errorf("%s: unknown file mode %o: %w", name, uint32(e.Mode), ErrUnsafeTree)
}

// dir creates folder e in fd, writes its tree and makes it read-only.
func (w *treeWriter) dir(e object.TreeEntry, prev *object.TreeEntry, name string, fd, prevFd, depth int) error {
	sub, err := object.GetTree(w.store, e.Hash)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := unix.Mkdirat(fd, e.Name, 0o755); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	subFd, err := openDir(fd, e.Name)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer func() { _ = unix.Close(subFd) }()
	prevSub, prevSubFd := w.prev.subtree(w.store, prev), noDir
	if prevSub != nil && prevFd != noDir {
		if pfd, err := openDir(prevFd, e.Name); err == nil {
			prevSubFd = pfd
			defer func() { _ = unix.Close(pfd) }()
		}
	}
	if err := w.write(sub, prevSub, name, subFd, prevSubFd, depth+1); err != nil {
		return err
	}
	if err := unix.Fchmod(subFd, 0o555); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// openDir opens folder name of the folder open as fd, never through a link.
func openDir(fd int, name string) (int, error) {
	for {
		sub, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			return sub, err
		}
	}
}

func (w *treeWriter) count(name string, size int64) error {
	w.files++
	w.bytes += size
	if w.files > w.maxFiles {
		return fmt.Errorf("more than %d files (at %s): %w", w.maxFiles, name, ErrCheckoutTooLarge)
	}
	if w.bytes > w.maxBytes {
		return fmt.Errorf("more than %d bytes (at %s): %w", w.maxBytes, name, ErrCheckoutTooLarge)
	}
	return nil
}

// file writes blob e as file e.Name of the folder open as fd.
func (w *treeWriter) file(e object.TreeEntry, name string, fd int) error {
	blob, err := object.GetBlob(w.store, e.Hash)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := w.count(name, blob.Size); err != nil {
		return err
	}
	rd, err := blob.Reader()
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer func() { _ = rd.Close() }()
	perm := uint32(0o444)
	if e.Mode == filemode.Executable {
		perm = 0o555
	}
	// O_EXCL: a name can only be written once, never through a link.
	ofd, err := openFile(fd, e.Name, perm)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	out := os.NewFile(uintptr(ofd), name)
	if _, err := io.Copy(out, io.LimitReader(rd, blob.Size)); err != nil {
		_ = out.Close()
		return fmt.Errorf("%s: %w", name, err)
	}
	return out.Close()
}

// openFile creates file name in the folder open as fd for writing; it
// must not exist (a link included).
func openFile(fd int, name string, perm uint32) (int, error) {
	for {
		ofd, err := unix.Openat(fd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
		if err != unix.EINTR {
			return ofd, err
		}
	}
}

// blob reads a small blob (a symlink target) of at most limit bytes.
func (w *treeWriter) blob(h plumbing.Hash, limit int64) ([]byte, error) {
	b, err := object.GetBlob(w.store, h)
	if err != nil {
		return nil, err
	}
	if b.Size > limit {
		return nil, fmt.Errorf("symlink target longer than %d bytes: %w", limit, ErrUnsafeTree)
	}
	rd, err := b.Reader()
	if err != nil {
		return nil, err
	}
	defer func() { _ = rd.Close() }()
	return io.ReadAll(io.LimitReader(rd, limit))
}

// checkLinks resolves every written symlink inside the finished checkout:
// a chain of links that each look local but together leave it (d -> .,
// e -> d/..), or a cycle, is refused. A link to a missing file is allowed.
func (w *treeWriter) checkLinks() error {
	for _, name := range w.links {
		if _, err := w.root.Stat(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s: symlink leaves the checkout or loops: %w", name, ErrUnsafeTree)
		}
	}
	return nil
}

// checkEntryName refuses names Git itself never writes into a tree, and the
// ones a checkout must not hold (confine.CheckName).
func checkEntryName(name string) error {
	if err := confine.CheckName(name); err != nil {
		return fmt.Errorf("%w: %w", err, ErrUnsafeTree)
	}
	return nil
}

// checkSymlink refuses a link at name (slash path in the checkout) whose
// target is absolute or, joined to the link's folder, leaves the checkout
// (confine.CheckSymlink).
func checkSymlink(name, target string) error {
	if err := confine.CheckSymlink(name, target); err != nil {
		return fmt.Errorf("%w: %w", err, ErrUnsafeTree)
	}
	return nil
}

// removeTree deletes a checkout (or any cache folder) that was made
// read-only: folders are made writable again first. Symlinks are never
// followed.
func removeTree(dir string) error {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}

// removeCheckout deletes a checkout and its tree record (the record first, so
// a half-deleted folder is never trusted).
func removeCheckout(dir string) error {
	if err := os.Remove(dir + treeSuffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return removeTree(dir)
}

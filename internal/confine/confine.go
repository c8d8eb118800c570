// Package confine keeps paths taken from a repository inside it: a file, a
// values file or a folder named by Git content or a flag must not lead out of
// the checkout, neither by "..", nor by an absolute path, nor by a symlink.
// Every check that touches the file system goes through an os.Root, the
// kernel-backed guard the standard library gives for exactly this.
package confine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrOutsideRoot is returned (wrapped) when a path, or the symlink it is,
// leads outside the root.
var ErrOutsideRoot = errors.New("path leaves the repository root")

// ErrSymlink is returned (wrapped) by NoSymlinks when a part of a path is a
// symlink.
var ErrSymlink = errors.New("is a symlink")

// Root returns dir as an absolute path with symlinks resolved, and checks it
// is a directory: the form every other function here expects of root.
func Root(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("resolving root %q: %w", dir, err)
	}
	resolved, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("resolving root %q: %w", dir, err)
	}
	fi, err := os.Stat(resolved)
	if err != nil {
		return "", fmt.Errorf("root %q: %w", dir, err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("root %q is not a directory", dir)
	}
	return resolved, nil
}

// Lexical joins rel (a slash or OS path relative to base, which lies inside
// root) and returns the result relative to root, refusing absolute paths and
// any ".." that climbs out of root. It does not touch the file system: use
// Join, or NoSymlinks, for what symlinks may do.
func Lexical(root, base, rel string) (string, error) {
	if filepath.IsAbs(rel) || strings.HasPrefix(rel, "/") {
		return "", fmt.Errorf("%q: absolute paths are not allowed; use a path relative to the repository root: %w", rel, ErrOutsideRoot)
	}
	inRoot, ok := relWithin(root, filepath.Join(base, filepath.FromSlash(rel)))
	if !ok {
		return "", fmt.Errorf("%q: %w %s", rel, ErrOutsideRoot, root)
	}
	return inRoot, nil
}

// Join is Lexical followed by the file system's answer: the path must exist
// and every symlink on its way must stay inside root (os.Root decides). It
// returns the absolute, symlink-resolved path. Errors name rel as the user
// wrote it; a missing path is fs.ErrNotExist.
func Join(root, base, rel string) (string, error) {
	inRoot, err := Lexical(root, base, rel)
	if err != nil {
		return "", err
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return "", fmt.Errorf("opening root %s: %w", root, err)
	}
	defer func() { _ = r.Close() }()
	joined := filepath.Join(root, inRoot)
	if _, err := r.Stat(inRoot); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%q: %w", rel, fs.ErrNotExist)
		}
		// os.Root refuses a symlink that escapes; say where it points.
		if resolved, rerr := filepath.EvalSymlinks(joined); rerr == nil && !Within(root, resolved) {
			return "", fmt.Errorf("%q is a symlink to %s: %w %s", rel, resolved, ErrOutsideRoot, root)
		}
		return "", fmt.Errorf("%q: %w", rel, err)
	}
	resolved, err := filepath.EvalSymlinks(joined)
	if err != nil {
		return "", fmt.Errorf("%q: %w", rel, err)
	}
	// The link may have changed since os.Root looked: check the answer too.
	if !Within(root, resolved) {
		return "", fmt.Errorf("%q is a symlink to %s: %w %s", rel, resolved, ErrOutsideRoot, root)
	}
	return resolved, nil
}

// NoSymlinks checks, through r, that no part of rel (relative to r's
// directory) is a symlink: for writes, where even a link that stays inside
// would make a tool edit a file other than the one named.
func NoSymlinks(r *os.Root, rel string) error {
	parts := strings.Split(filepath.ToSlash(rel), "/")
	for i := range parts {
		p := filepath.FromSlash(strings.Join(parts[:i+1], "/"))
		fi, err := r.Lstat(p)
		if err != nil {
			return err
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("%s %w", filepath.ToSlash(p), ErrSymlink)
		}
	}
	return nil
}

// Within reports whether path is root or below it (both absolute, cleaned).
func Within(root, path string) bool {
	_, ok := relWithin(root, path)
	return ok
}

// Rel returns path relative to root with forward slashes, for messages; a
// path outside root is returned as it is.
func Rel(root, path string) string {
	if rel, err := filepath.Rel(root, path); err == nil {
		return filepath.ToSlash(rel)
	}
	return path
}

func relWithin(root, path string) (string, bool) {
	rel, err := filepath.Rel(root, path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", false
	}
	return rel, true
}

package render

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrOutsideRoot is returned (wrapped) when a path, or the symlink it is,
// leads outside the checkout root.
var ErrOutsideRoot = errors.New("path leaves the repository root")

// confinedPath joins rel (a slash or OS path relative to base, which must lie
// inside root) and returns the absolute, symlink-resolved result, refusing
// absolute paths and anything that ends up outside root. The error names the
// offending path as the user wrote it.
func confinedPath(root, base, rel string) (string, error) {
	if filepath.IsAbs(rel) || strings.HasPrefix(rel, "/") {
		return "", fmt.Errorf("%q: absolute paths are not allowed; use a path relative to the repository root: %w", rel, ErrOutsideRoot)
	}
	joined := filepath.Join(base, filepath.FromSlash(rel))
	if !within(root, joined) {
		return "", fmt.Errorf("%q: %w %s", rel, ErrOutsideRoot, root)
	}
	resolved, err := filepath.EvalSymlinks(joined)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%q: %w", rel, fs.ErrNotExist)
		}
		return "", fmt.Errorf("%q: %w", rel, err)
	}
	if !within(root, resolved) {
		return "", fmt.Errorf("%q is a symlink to %s: %w %s", rel, resolved, ErrOutsideRoot, root)
	}
	return resolved, nil
}

// resolveRoot returns root as an absolute path with symlinks resolved.
func resolveRoot(root string) (string, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return "", fmt.Errorf("resolving root %q: %w", root, err)
	}
	resolved, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("resolving root %q: %w", root, err)
	}
	fi, err := os.Stat(resolved)
	if err != nil {
		return "", fmt.Errorf("root %q: %w", root, err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("root %q is not a directory", root)
	}
	return resolved, nil
}

// within reports whether path is root or below it (both absolute, cleaned).
func within(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	if err != nil {
		return false
	}
	return rel == "." || (rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)))
}

// relToRoot returns path relative to root with forward slashes, for messages.
func relToRoot(root, path string) string {
	if rel, err := filepath.Rel(root, path); err == nil {
		return filepath.ToSlash(rel)
	}
	return path
}

package confine

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// CheckName refuses a file name (one path element) that a tree written to
// disk must not hold: empty, ".", "..", one with '/' or NUL, or .git in any
// case. A Git checkout and an unpacked artifact share this rule; callers
// wrap the error with their own sentinel.
func CheckName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return errors.New("not a file name")
	case strings.ContainsAny(name, "/\x00"):
		return errors.New("a name may not contain '/' or NUL")
	case strings.EqualFold(name, ".git"):
		return errors.New("a tree may not hold .git")
	}
	return nil
}

// CheckSymlink refuses a link at name (a slash path inside the tree) whose
// target is empty, absolute or, joined to the link's folder, leaves the
// tree. The error names the link. Chains of links that together leave the
// tree are caught by resolving them once the whole tree is written.
func CheckSymlink(name, target string) error {
	switch {
	case target == "" || strings.ContainsRune(target, 0):
		return fmt.Errorf("%s: empty or malformed symlink target", name)
	case path.IsAbs(target):
		return fmt.Errorf("%s: symlink to the absolute path %q leaves the checkout", name, target)
	}
	joined := path.Join(path.Dir(name), target)
	if joined == ".." || strings.HasPrefix(joined, "../") {
		return fmt.Errorf("%s: symlink to %q leaves the checkout", name, target)
	}
	return nil
}

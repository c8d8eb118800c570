package readset

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// ErrNotKeyable is returned (wrapped) when an input cannot be given a value
// (a symlink loop or one leaving the repository, a tree too large to
// walk): the render is done again, never reused.
var ErrNotKeyable = errors.New("input cannot be keyed")

// Limits of one computation: more than a checkout would allow is refused.
const (
	maxHops        = 40     // symlinks followed resolving one path, as Linux's ELOOP
	maxTreeEntries = 200000 // entries walked for the Tree inputs of one commit
	maxLinkTarget  = 4096
)

// Values returns the value of each input in the tree of commit c, in order.
// Equal values at two commits mean the render read the same bytes at the
// same paths.
func Values(store storer.EncodedObjectStorer, c *object.Commit, inputs []Input) ([]string, error) {
	v, err := NewCommitValues(store, c)
	if err != nil {
		return nil, err
	}
	return v.Values(inputs)
}

// CommitValues answers Values for many input sets of one commit, sharing
// the folders it has read (a push compared for every Application reading
// the repository). Not safe for concurrent use.
type CommitValues struct{ v *valuer }

// NewCommitValues prepares Values at commit c.
func NewCommitValues(store storer.EncodedObjectStorer, c *object.Commit) (*CommitValues, error) {
	root, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", c.Hash, err)
	}
	return &CommitValues{v: &valuer{store: store, root: root, trees: map[string]*object.Tree{"": root}}}, nil
}

// Values returns the value of each input at the commit, in order.
func (cv *CommitValues) Values(inputs []Input) ([]string, error) {
	v := cv.v
	v.entries = 0 // the Tree walk bound is per input set
	var err error
	out := make([]string, len(inputs))
	for i, in := range inputs {
		if out[i], err = v.value(in); err != nil {
			return nil, fmt.Errorf("%s (%s): %w", in.Path, in.Access, err)
		}
	}
	return out, nil
}

// Changed names the inputs whose value differs (at most max of them).
func Changed(inputs []Input, before, after []string, limit int) []string {
	var out []string
	for i, in := range inputs {
		if i < len(before) && i < len(after) && before[i] == after[i] {
			continue
		}
		if len(out) == limit {
			break
		}
		out = append(out, in.Path)
	}
	return out
}

// valuer answers for one commit's tree, caching the folders it walked.
type valuer struct {
	store   storer.EncodedObjectStorer
	root    *object.Tree
	trees   map[string]*object.Tree // resolved folder path → tree
	entries int
}

// resolved is where a path leads: the entry it ends on (hash and mode;
// mode 0 when nothing is there), its resolved path, and the symlinks
// followed on the way.
type resolved struct {
	path  string
	mode  filemode.FileMode
	hash  plumbing.Hash
	links []string
}

func (v *valuer) value(in Input) (string, error) {
	r, err := v.resolve(in.Path)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, l := range r.links {
		b.WriteString("link:" + l + ";")
	}
	switch r.mode {
	case 0:
		b.WriteString("absent")
	case filemode.Dir:
		switch in.Access {
		case Stat, File:
			b.WriteString("dir")
		case List:
			s, err := v.listing(r.path)
			if err != nil {
				return "", err
			}
			b.WriteString("list:" + s)
		case Tree:
			s, err := v.tree(r.path, map[string]bool{})
			if err != nil {
				return "", err
			}
			b.WriteString("tree:" + s)
		}
	default:
		if in.Access == Stat {
			b.WriteString("file")
		} else {
			_, _ = fmt.Fprintf(&b, "file:%o:%s", uint32(r.mode), r.hash)
		}
	}
	return b.String(), nil
}

// resolve follows p from the root as the file system would: ".." after a
// symlink climbs from where the link led, a submodule is absent (checkouts
// leave it out), a link leaving the repository is an error.
func (v *valuer) resolve(p string) (resolved, error) {
	var r resolved
	comps := split(p)
	var stack []string
	for hops := 0; len(comps) > 0; {
		c := comps[0]
		comps = comps[1:]
		switch c {
		case ".", "":
			continue
		case "..":
			if len(stack) == 0 {
				return r, fmt.Errorf("leaves the repository: %w", ErrNotKeyable)
			}
			stack = stack[:len(stack)-1]
			continue
		}
		dir, err := v.treeAt(strings.Join(stack, "/"))
		if err != nil {
			return r, err
		}
		e := find(dir, c)
		if e == nil || e.Mode == filemode.Submodule {
			r.path, r.mode = path.Join(append(stack, c)...), 0
			return r, nil
		}
		switch e.Mode {
		case filemode.Symlink:
			if hops++; hops > maxHops {
				return r, fmt.Errorf("more than %d symlinks: %w", maxHops, ErrNotKeyable)
			}
			target, err := v.blob(e.Hash)
			if err != nil {
				return r, err
			}
			if target == "" || path.IsAbs(target) {
				return r, fmt.Errorf("symlink to %q: %w", target, ErrNotKeyable)
			}
			r.links = append(r.links, e.Hash.String())
			comps = append(split(target), comps...)
		case filemode.Dir:
			stack = append(stack, c)
		default:
			if len(comps) > 0 {
				// A file used as a folder: nothing is there.
				r.path, r.mode = path.Join(append(stack, c)...), 0
				return r, nil
			}
			r.path, r.mode, r.hash = path.Join(append(stack, c)...), e.Mode, e.Hash
			return r, nil
		}
	}
	r.path, r.mode = strings.Join(stack, "/"), filemode.Dir
	t, err := v.treeAt(r.path)
	if err != nil {
		return r, err
	}
	r.hash = t.Hash
	return r, nil
}

// treeAt is the tree at p, a resolved folder path ("" for the root).
func (v *valuer) treeAt(p string) (*object.Tree, error) {
	if t, ok := v.trees[p]; ok {
		return t, nil
	}
	parent, name := path.Split(p)
	pt, err := v.treeAt(strings.TrimSuffix(parent, "/"))
	if err != nil {
		return nil, err
	}
	e := find(pt, name)
	if e == nil || e.Mode != filemode.Dir {
		return nil, fmt.Errorf("folder %s: not in the tree: %w", p, ErrNotKeyable)
	}
	t, err := object.GetTree(v.store, e.Hash)
	if err != nil {
		return nil, fmt.Errorf("folder %s: %w", p, err)
	}
	v.trees[p] = t
	return t, nil
}

// listing is a digest of a folder's entries: names, modes, and the target
// of each symlink (a retargeted link changes what the render finds).
func (v *valuer) listing(p string) (string, error) {
	t, err := v.treeAt(p)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, e := range t.Entries {
		if e.Mode == filemode.Submodule {
			continue
		}
		_, _ = fmt.Fprintf(h, "%s\x00%o\x00", e.Name, uint32(e.Mode))
		if e.Mode == filemode.Symlink {
			h.Write(e.Hash[:])
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// tree is a digest of the folder at p and everything a read of it
// reaches: its Git tree hash (every byte below it) and, for each symlink
// below it, the value of where the link leads (which may lie outside p).
// visiting guards against a link back into a folder being walked.
func (v *valuer) tree(p string, visiting map[string]bool) (string, error) {
	if visiting[p] {
		return "", fmt.Errorf("%s: symlink cycle: %w", p, ErrNotKeyable)
	}
	visiting[p] = true
	defer delete(visiting, p)
	t, err := v.treeAt(p)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write(t.Hash[:])
	err = v.walk(t, p, func(entry string, e object.TreeEntry) error {
		if e.Mode != filemode.Symlink {
			return nil
		}
		r, err := v.resolve(entry)
		if err != nil {
			return err
		}
		_, _ = fmt.Fprintf(h, "%s\x00%s\x00%o\x00%s\x00", entry, r.path, uint32(r.mode), r.hash)
		if r.mode == filemode.Dir && !strings.HasPrefix(r.path+"/", p+"/") && p != "" {
			sub, err := v.tree(r.path, visiting)
			if err != nil {
				return err
			}
			h.Write([]byte(sub))
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// walk calls fn for every entry below t (a tree at p), bounded by
// maxTreeEntries for the whole computation.
func (v *valuer) walk(t *object.Tree, p string, fn func(string, object.TreeEntry) error) error {
	for _, e := range t.Entries {
		if v.entries++; v.entries > maxTreeEntries {
			return fmt.Errorf("more than %d entries: %w", maxTreeEntries, ErrNotKeyable)
		}
		entry := path.Join(p, e.Name)
		if err := fn(entry, e); err != nil {
			return err
		}
		if e.Mode != filemode.Dir {
			continue
		}
		sub, err := object.GetTree(v.store, e.Hash)
		if err != nil {
			return fmt.Errorf("folder %s: %w", entry, err)
		}
		if err := v.walk(sub, entry, fn); err != nil {
			return err
		}
	}
	return nil
}

// blob reads a symlink's target.
func (v *valuer) blob(h plumbing.Hash) (string, error) {
	b, err := object.GetBlob(v.store, h)
	if err != nil {
		return "", fmt.Errorf("symlink %s: %w", h, err)
	}
	if b.Size > maxLinkTarget {
		return "", fmt.Errorf("symlink target of %d bytes: %w", b.Size, ErrNotKeyable)
	}
	rd, err := b.Reader()
	if err != nil {
		return "", err
	}
	defer func() { _ = rd.Close() }()
	data, err := io.ReadAll(io.LimitReader(rd, maxLinkTarget))
	if err != nil {
		return "", err
	}
	return string(data), nil
}

func find(t *object.Tree, name string) *object.TreeEntry {
	for i := range t.Entries {
		if t.Entries[i].Name == name {
			return &t.Entries[i]
		}
	}
	return nil
}

func split(p string) []string {
	return strings.Split(strings.Trim(p, "/"), "/")
}

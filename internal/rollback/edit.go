package rollback

import (
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// attemptEdit makes Options.Edit's commit on tip: the files under Paths
// read from tip's tree, the ones Edit returns written as new blobs.
func (p *Plan) attemptEdit(tip plumbing.Hash, tipCommit *object.Commit) (plumbing.Hash, bool, error) {
	tree, err := tipCommit.Tree()
	if err != nil {
		return plumbing.ZeroHash, false, err
	}
	files, modes, err := readFiles(tree, p.opts.Paths)
	if err != nil {
		return plumbing.ZeroHash, false, err
	}
	edited, err := p.opts.Edit(files)
	if err != nil {
		return plumbing.ZeroHash, false, err
	}
	names := make([]string, 0, len(edited))
	for name := range edited {
		if _, ok := files[name]; !ok {
			return plumbing.ZeroHash, false, fmt.Errorf("internal error: the edit returned %s, which it was not given", name)
		}
		names = append(names, name)
	}
	sort.Strings(names)
	st := p.repo.Storer
	root := tree.Hash
	for _, name := range names {
		obj := st.NewEncodedObject()
		obj.SetType(plumbing.BlobObject)
		w, err := obj.Writer()
		if err != nil {
			return plumbing.ZeroHash, false, err
		}
		if _, err := w.Write(edited[name]); err != nil {
			return plumbing.ZeroHash, false, err
		}
		if err := w.Close(); err != nil {
			return plumbing.ZeroHash, false, err
		}
		blob, err := st.SetEncodedObject(obj)
		if err != nil {
			return plumbing.ZeroHash, false, err
		}
		cur, err := object.GetTree(st, root)
		if err != nil {
			return plumbing.ZeroHash, false, err
		}
		if root, _, err = replaceEntry(st, cur, strings.Split(name, "/"), &object.TreeEntry{Name: path.Base(name), Mode: modes[name], Hash: blob}); err != nil {
			return plumbing.ZeroHash, false, err
		}
	}
	if root == tree.Hash {
		return plumbing.ZeroHash, false, nil
	}
	return p.commitOn(tip, root)
}

// readFiles reads the regular files under paths of tree, bounded.
func readFiles(tree *object.Tree, paths []string) (map[string][]byte, map[string]filemode.FileMode, error) {
	files, modes := map[string][]byte{}, map[string]filemode.FileMode{}
	var total int64
	for _, p := range paths {
		sub, prefix := tree, ""
		if p != "." {
			entry, err := tree.FindEntry(p)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", p, err)
			}
			if entry.Mode != filemode.Dir {
				sub, prefix = nil, p
			} else if sub, err = tree.Tree(p); err != nil {
				return nil, nil, err
			} else {
				prefix = p + "/"
			}
		}
		add := func(name string, mode filemode.FileMode, f *object.File) error {
			if mode != filemode.Regular && mode != filemode.Executable {
				return nil // links and submodules are not edited
			}
			if len(files) >= MaxEditFiles {
				return fmt.Errorf("more than %d files under %s", MaxEditFiles, strings.Join(paths, ", "))
			}
			if total += f.Size; total > MaxEditBytes {
				return fmt.Errorf("more than %d bytes under %s", MaxEditBytes, strings.Join(paths, ", "))
			}
			r, err := f.Reader()
			if err != nil {
				return err
			}
			defer func() { _ = r.Close() }()
			b, err := io.ReadAll(r)
			if err != nil {
				return err
			}
			files[name], modes[name] = b, mode
			return nil
		}
		if sub == nil {
			f, err := tree.File(prefix)
			if err != nil {
				return nil, nil, err
			}
			if err := add(prefix, f.Mode, f); err != nil {
				return nil, nil, err
			}
			continue
		}
		err := sub.Files().ForEach(func(f *object.File) error { return add(prefix+f.Name, f.Mode, f) })
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, nil, err
		}
	}
	return files, modes, nil
}

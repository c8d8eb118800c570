package gitserver

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// RawEntry is one entry of a crafted tree, written exactly as given: names
// may repeat or hold '/', symlinks may point anywhere. Tests use it to serve
// the hostile trees no well-behaved Git client would create.
type RawEntry struct {
	Name string
	// Mode defaults to a regular file, or a folder when Entries is set.
	Mode filemode.FileMode
	// Content is a file's bytes or a symlink's target.
	Content string
	// Entries are a folder's entries.
	Entries []RawEntry
}

// CommitRaw writes a commit whose tree is entries straight into the bare
// repository (no client-side checks) on top of branch (default "main"), and
// moves the branch to it. It returns the commit's SHA.
func (s *Server) CommitRaw(_ context.Context, repo, branch string, entries []RawEntry) (string, error) {
	if branch == "" {
		branch = "main"
	}
	r, err := git.PlainOpen(filepath.Join(s.opts.Root, repo+".git"))
	if err != nil {
		return "", fmt.Errorf("opening %s: %w", repo, err)
	}
	tree, err := writeRawTree(r.Storer, entries)
	if err != nil {
		return "", err
	}
	ref := plumbing.NewBranchReferenceName(branch)
	sig := object.Signature{Name: "keyless test", Email: "test@keyless.dev", When: time.Now()}
	c := &object.Commit{Author: sig, Committer: sig, Message: "crafted tree", TreeHash: tree}
	if cur, err := r.Reference(ref, true); err == nil {
		c.ParentHashes = []plumbing.Hash{cur.Hash()}
	}
	h, err := store(r.Storer, c)
	if err != nil {
		return "", err
	}
	if err := r.Storer.SetReference(plumbing.NewHashReference(ref, h)); err != nil {
		return "", err
	}
	return h.String(), nil
}

type encoder interface {
	Encode(plumbing.EncodedObject) error
}

func store(st storer.EncodedObjectStorer, o encoder) (plumbing.Hash, error) {
	obj := st.NewEncodedObject()
	if err := o.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return st.SetEncodedObject(obj)
}

func writeRawTree(st storer.EncodedObjectStorer, entries []RawEntry) (plumbing.Hash, error) {
	t := &object.Tree{}
	for _, e := range entries {
		mode := e.Mode
		if mode == 0 {
			mode = filemode.Regular
			if e.Entries != nil {
				mode = filemode.Dir
			}
		}
		var h plumbing.Hash
		var err error
		if mode == filemode.Dir {
			h, err = writeRawTree(st, e.Entries)
		} else {
			obj := st.NewEncodedObject()
			obj.SetType(plumbing.BlobObject)
			w, werr := obj.Writer()
			if werr != nil {
				return plumbing.ZeroHash, werr
			}
			_, _ = w.Write([]byte(e.Content))
			_ = w.Close()
			h, err = st.SetEncodedObject(obj)
		}
		if err != nil {
			return plumbing.ZeroHash, err
		}
		t.Entries = append(t.Entries, object.TreeEntry{Name: e.Name, Mode: mode, Hash: h})
	}
	// Git's order: a folder sorts as if its name ended in '/'.
	key := func(e object.TreeEntry) string {
		if e.Mode == filemode.Dir {
			return e.Name + "/"
		}
		return e.Name
	}
	sort.SliceStable(t.Entries, func(i, j int) bool { return key(t.Entries[i]) < key(t.Entries[j]) })
	return store(st, t)
}

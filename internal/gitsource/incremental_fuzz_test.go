package gitsource

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/storage/memory"
)

// storeTree writes files (slash path → content; "dir/" prefixes make
// folders) as blobs and trees into s and returns the root tree's hash.
func storeTree(t *testing.T, s storer.EncodedObjectStorer, files map[string]string) plumbing.Hash {
	t.Helper()
	type dir struct {
		files map[string]string
		dirs  map[string]*dir
	}
	root := &dir{files: map[string]string{}, dirs: map[string]*dir{}}
	for p, content := range files {
		d := root
		parts := strings.Split(p, "/")
		for _, part := range parts[:len(parts)-1] {
			if d.dirs[part] == nil {
				d.dirs[part] = &dir{files: map[string]string{}, dirs: map[string]*dir{}}
			}
			d = d.dirs[part]
		}
		d.files[parts[len(parts)-1]] = content
	}
	var write func(d *dir) plumbing.Hash
	write = func(d *dir) plumbing.Hash {
		var entries []object.TreeEntry
		for name, content := range d.files {
			if _, clash := d.dirs[name]; clash {
				continue
			}
			entries = append(entries, object.TreeEntry{Name: name, Mode: filemode.Regular, Hash: storeBlob(s, content)})
		}
		for name, sub := range d.dirs {
			entries = append(entries, object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: write(sub)})
		}
		sort.Slice(entries, func(i, j int) bool { return entries[i].Name < entries[j].Name })
		o := s.NewEncodedObject()
		if err := (&object.Tree{Entries: entries}).Encode(o); err != nil {
			t.Fatal(err)
		}
		h, err := s.SetEncodedObject(o)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	return write(root)
}

// storeBlob writes content as a blob into s.
func storeBlob(s storer.EncodedObjectStorer, content string) plumbing.Hash {
	o := s.NewEncodedObject()
	o.SetType(plumbing.BlobObject)
	w, _ := o.Writer()
	_, _ = w.Write([]byte(content))
	_ = w.Close()
	h, _ := s.SetEncodedObject(o)
	return h
}

func storeCommit(t *testing.T, s storer.EncodedObjectStorer, tree plumbing.Hash, parents ...plumbing.Hash) plumbing.Hash {
	t.Helper()
	o := s.NewEncodedObject()
	if err := (&object.Commit{TreeHash: tree, ParentHashes: parents, Message: "m"}).Encode(o); err != nil {
		t.Fatal(err)
	}
	h, err := s.SetEncodedObject(o)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// reachableMissing says whether an object of commit h's tree is in neither
// store: what checkPackComplete must find.
func reachableMissing(in, main storer.EncodedObjectStorer, tree plumbing.Hash) bool {
	has := func(h plumbing.Hash) bool { return in.HasEncodedObject(h) == nil || main.HasEncodedObject(h) == nil }
	stack := []plumbing.Hash{tree}
	for len(stack) > 0 {
		h := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		o, err := in.EncodedObject(plumbing.TreeObject, h)
		if err != nil {
			o, err = main.EncodedObject(plumbing.TreeObject, h)
		}
		if err != nil {
			return true
		}
		var tr object.Tree
		if tr.Decode(o) != nil {
			return true
		}
		for _, e := range tr.Entries {
			if e.Mode == filemode.Dir {
				stack = append(stack, e.Hash)
			} else if !has(e.Hash) {
				return true
			}
		}
	}
	return false
}

// FuzzCheckPackComplete: a cache holding commit A (complete) and a pack
// holding B (and C on it) that change, add, move and restore files; the
// pack loses some of its objects. checkPackComplete refuses the pack
// exactly when an object of B's or C's tree is in neither: never accepts
// one a checkout would miss, never refuses a complete one.
func FuzzCheckPackComplete(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3}, uint64(0))
	f.Add([]byte{5, 9, 200, 7, 7, 1}, uint64(0b1011))
	f.Add([]byte{255, 0, 128, 64, 32, 16, 8}, uint64(1<<63|5))
	f.Fuzz(func(t *testing.T, ops []byte, drop uint64) {
		if len(ops) > 64 {
			ops = ops[:64]
		}
		files := map[string]string{"a/x": "1", "a/b/y": "2", "c/z": "3", "top": "4"}
		old := map[string]string{"a/x": "0", "gone/w": "9"} // only history the cache never saw had these
		main, in := memory.NewStorage(), memory.NewStorage()
		a := storeCommit(t, main, storeTree(t, main, files))
		// history objects the server may leave out: written to neither store
		scratch := memory.NewStorage()
		storeTree(t, scratch, old)

		paths := []string{"a/x", "a/b/y", "c/z", "top", "gone/w", "a/b/new", "d/e/f"}
		apply := func(op byte) {
			p := paths[int(op)%len(paths)]
			switch (op / 8) % 4 {
			case 0:
				files[p] = fmt.Sprint(op)
			case 1:
				delete(files, p)
			case 2:
				if v, ok := old[p]; ok {
					files[p] = v // restored from history
				}
			case 3:
				files[p] = files["top"] // a copy of another file
			}
		}
		half := len(ops) / 2
		for _, op := range ops[:half] {
			apply(op)
		}
		b := storeCommit(t, in, storeTree(t, in, files), a)
		for _, op := range ops[half:] {
			apply(op)
		}
		cTree := storeTree(t, in, files)
		c := storeCommit(t, in, cTree, b)

		// The pack loses what the drop bits say (never its commits),
		// and what the cache already holds (a server sends only new objects).
		iter, err := in.IterEncodedObjects(plumbing.AnyObject)
		if err != nil {
			t.Fatal(err)
		}
		var hashes []plumbing.Hash
		_ = iter.ForEach(func(o plumbing.EncodedObject) error {
			hashes = append(hashes, o.Hash())
			return nil
		})
		sort.Slice(hashes, func(i, j int) bool { return hashes[i].String() < hashes[j].String() })
		for i, h := range hashes {
			if h == b || h == c {
				continue
			}
			if drop&(1<<(i%64)) != 0 || main.HasEncodedObject(h) == nil {
				delete(in.Objects, h)
				delete(in.Blobs, h)
				delete(in.Trees, h)
			}
		}
		bc, _ := in.EncodedObject(plumbing.CommitObject, b)
		var bcm object.Commit
		_ = bcm.Decode(bc)
		missing := reachableMissing(in, main, bcm.TreeHash) || reachableMissing(in, main, cTree)
		err = checkPackComplete(in, main)
		switch {
		case missing && err == nil:
			t.Fatalf("a pack missing objects was accepted")
		case !missing && err != nil:
			t.Fatalf("a complete pack was refused: %v", err)
		case err != nil && !errors.Is(err, errIncomplete):
			t.Fatalf("refused for another reason: %v", err)
		}
	})
}

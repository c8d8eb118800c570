package rollback

import (
	"errors"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// restore returns the hash of a tree that is cur with the entry at p (a
// slash path, "." for the whole tree) as it is in from: replaced, added,
// or removed where from has none. New trees are written to st; folders
// left empty disappear, as Git has no empty folders.
func restore(st storer.EncodedObjectStorer, cur, from *object.Tree, p string) (plumbing.Hash, error) {
	if p == "." {
		return from.Hash, nil
	}
	src, err := from.FindEntry(p)
	switch {
	case errors.Is(err, object.ErrEntryNotFound), errors.Is(err, object.ErrDirectoryNotFound):
		src = nil
	case err != nil:
		return plumbing.ZeroHash, err
	}
	h, _, err := replaceEntry(st, cur, strings.Split(p, "/"), src)
	return h, err
}

// replaceEntry sets the entry at parts below t (nil: an empty tree) to src
// (nil: removes it) and returns the new tree's hash, or empty when nothing
// is left in it.
func replaceEntry(st storer.EncodedObjectStorer, t *object.Tree, parts []string, src *object.TreeEntry) (plumbing.Hash, bool, error) {
	var entries []object.TreeEntry
	if t != nil {
		entries = append(entries, t.Entries...)
	}
	name := parts[0]
	i := 0
	for i < len(entries) && entries[i].Name != name {
		i++
	}
	found := i < len(entries)
	var next *object.TreeEntry
	if len(parts) == 1 {
		if src != nil {
			next = &object.TreeEntry{Name: name, Mode: src.Mode, Hash: src.Hash}
		}
	} else {
		var child *object.Tree
		if found && entries[i].Mode == filemode.Dir {
			c, err := object.GetTree(st, entries[i].Hash)
			if err != nil {
				return plumbing.ZeroHash, false, err
			}
			child = c
		}
		h, empty, err := replaceEntry(st, child, parts[1:], src)
		if err != nil {
			return plumbing.ZeroHash, false, err
		}
		if !empty {
			next = &object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h}
		}
	}
	switch {
	case next != nil && found:
		entries[i] = *next
	case next != nil:
		entries = append(entries, *next)
	case found:
		entries = append(entries[:i], entries[i+1:]...)
	}
	if len(entries) == 0 {
		return plumbing.ZeroHash, true, nil
	}
	// Git's order: names compared as if a folder's ended in "/".
	sort.Slice(entries, func(a, b int) bool { return sortKey(entries[a]) < sortKey(entries[b]) })
	obj := st.NewEncodedObject()
	if err := (&object.Tree{Entries: entries}).Encode(obj); err != nil {
		return plumbing.ZeroHash, false, err
	}
	h, err := st.SetEncodedObject(obj)
	return h, false, err
}

func sortKey(e object.TreeEntry) string {
	if e.Mode == filemode.Dir {
		return e.Name + "/"
	}
	return e.Name
}

package readset_test

import (
	"errors"
	"sort"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/keyless-cd/keyless/internal/readset"
)

// store writes obj to st and returns its hash.
func store(t testing.TB, st *memory.Storage, enc interface {
	Encode(plumbing.EncodedObject) error
}) plumbing.Hash {
	o := st.NewEncodedObject()
	if err := enc.Encode(o); err != nil {
		t.Fatal(err)
	}
	h, err := st.SetEncodedObject(o)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func blob(t testing.TB, st *memory.Storage, data string) plumbing.Hash {
	o := st.NewEncodedObject()
	o.SetType(plumbing.BlobObject)
	w, err := o.Writer()
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write([]byte(data))
	_ = w.Close()
	h, err := st.SetEncodedObject(o)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func tree(t testing.TB, st *memory.Storage, entries ...object.TreeEntry) plumbing.Hash {
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name < entries[j].Name })
	return store(t, st, &object.Tree{Entries: entries})
}

// FuzzValues: whatever symlink targets a commit holds and whatever path a
// render reports, Values answers (a value, or an error) without panicking
// or looping, and never resolves a path out of the repository.
func FuzzValues(f *testing.F) {
	for _, seed := range [][2]string{
		{"../b", "a/l/x"}, {"..", "a/l/a/l/a/l/x"}, {"l", "a/l/x"}, {"/etc", "a/l"}, {"../../..", "a/l"},
		{"./././f", "a/l"}, {"f/..", "a/l/f"}, {"", "a/l"}, {"b/../../a/l", "a/l/x"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, target, path string) {
		if len(target) > 512 || len(path) > 512 {
			return
		}
		st := memory.NewStorage()
		b := tree(t, st, object.TreeEntry{Name: "x", Mode: filemode.Regular, Hash: blob(t, st, "x")})
		a := tree(t, st,
			object.TreeEntry{Name: "l", Mode: filemode.Symlink, Hash: blob(t, st, target)},
			object.TreeEntry{Name: "f", Mode: filemode.Regular, Hash: blob(t, st, "f")})
		root := tree(t, st, object.TreeEntry{Name: "a", Mode: filemode.Dir, Hash: a}, object.TreeEntry{Name: "b", Mode: filemode.Dir, Hash: b})
		c := &object.Commit{TreeHash: root, Author: object.Signature{When: time.Unix(0, 0)}, Committer: object.Signature{When: time.Unix(0, 0)}}
		commit, err := object.GetCommit(st, store(t, st, c))
		if err != nil {
			t.Fatal(err)
		}
		for _, acc := range []readset.Access{readset.Stat, readset.File, readset.List, readset.Tree} {
			v, err := readset.Values(st, commit, []readset.Input{{Path: path, Access: acc}})
			if err == nil && len(v) != 1 {
				t.Fatalf("%d values for one input", len(v))
			}
			if err != nil && !errors.Is(err, readset.ErrNotKeyable) {
				t.Fatalf("path %q, link %q: %v (want a value or ErrNotKeyable)", path, target, err)
			}
		}
	})
}

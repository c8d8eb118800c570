package gitsource

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
)

// fuzzTree builds a tree from lines "MODE|NAME|CONTENT" (MODE f file,
// x executable, l symlink, d folder holding one file CONTENT, s submodule),
// kept in the order given, so names may repeat or be anything.
func fuzzTree(t *testing.T, st *memory.Storage, spec string) *object.Tree {
	t.Helper()
	blob := func(content string) plumbing.Hash { return storeBlob(st, content) }
	encode := func(tr *object.Tree) plumbing.Hash {
		o := st.NewEncodedObject()
		if err := tr.Encode(o); err != nil {
			return plumbing.ZeroHash
		}
		h, _ := st.SetEncodedObject(o)
		return h
	}
	tree := &object.Tree{}
	for _, line := range strings.Split(spec, "\n") {
		mode, rest, ok := strings.Cut(line, "|")
		if !ok {
			continue
		}
		name, content, _ := strings.Cut(rest, "|")
		e := object.TreeEntry{Name: name}
		switch mode {
		case "x":
			e.Mode, e.Hash = filemode.Executable, blob(content)
		case "l":
			e.Mode, e.Hash = filemode.Symlink, blob(content)
		case "d":
			sub := &object.Tree{Entries: []object.TreeEntry{{Name: content, Mode: filemode.Regular, Hash: blob("inner")}}}
			e.Mode, e.Hash = filemode.Dir, encode(sub)
		case "s":
			e.Mode, e.Hash = filemode.Submodule, plumbing.ZeroHash
		default:
			e.Mode, e.Hash = filemode.Regular, blob(content)
		}
		tree.Entries = append(tree.Entries, e)
	}
	// Encode refuses unsorted entries; keep duplicates, sort stably.
	sort.SliceStable(tree.Entries, func(i, j int) bool { return tree.Entries[i].Name < tree.Entries[j].Name })
	h := encode(tree)
	if h.IsZero() {
		return nil
	}
	got, err := object.GetTree(st, h)
	if err != nil {
		return nil
	}
	return got
}

// FuzzWriteTree checks that no tree, however crafted, writes anything
// outside its checkout folder.
func FuzzWriteTree(f *testing.F) {
	for _, seed := range []string{
		"l|x|../outside\nd|x|config",
		"l|x|.\nd|x|config",
		"l|d|.\nl|e|d/..\nf|e/evil|x",
		"f|a|1\nf|a|2",
		"f|a/../../b|x",
		"d|..|config",
		"d|.git|config",
		"l|abs|/etc/passwd",
		"l|a|b\nl|b|a",
		"x|run.sh|#!/bin/sh\ns|sub|",
		"d|deploy|cm.yaml\nf|README|hi",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		st := memory.NewStorage()
		tree := fuzzTree(t, st, spec)
		if tree == nil {
			return
		}
		parent := t.TempDir()
		sentinel := filepath.Join(parent, "sentinel")
		if err := os.WriteFile(sentinel, []byte("untouched"), 0o600); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(parent, "checkout")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		_, _ = writeTree(t.Context(), st, tree, dir, 100, 1<<20, nil)
		defer func() { _ = removeTree(dir) }()
		entries, err := os.ReadDir(parent)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 2 {
			t.Fatalf("something was written beside the checkout: %v", entries)
		}
		if b, _ := os.ReadFile(sentinel); string(b) != "untouched" {
			t.Fatal("a file outside the checkout was changed")
		}
	})
}

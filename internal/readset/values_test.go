package readset_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/keyless-cd/keyless/internal/readset"
)

// commitTree commits files (content "->x" is a symlink to x) to a new
// repository and returns it with the commit.
func commitTree(t *testing.T, files map[string]string) (*git.Repository, *object.Commit) {
	t.Helper()
	dir := t.TempDir()
	repo, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, files)
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		t.Fatal(err)
	}
	h, err := wt.Commit("c", &git.CommitOptions{All: true, Author: &object.Signature{Name: "a", Email: "a@example.com", When: time.Unix(0, 0)}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := repo.CommitObject(h)
	if err != nil {
		t.Fatal(err)
	}
	return repo, c
}

func valueOf(t *testing.T, files map[string]string, in readset.Input) (string, error) {
	t.Helper()
	repo, c := commitTree(t, files)
	v, err := readset.Values(repo.Storer, c, []readset.Input{in})
	if err != nil {
		return "", err
	}
	return v[0], nil
}

// TestValuesFollowSymlinks: a value changes when what the path leads to
// changes, and when a link on the way is retargeted, even to identical
// content elsewhere; it does not change for edits the access does not see.
func TestValuesFollowSymlinks(t *testing.T) {
	base := map[string]string{
		"a/x.yaml": "one", "b/x.yaml": "one", "a/other": "z",
		"app/link": "->../a", "app/file": "->../a/x.yaml", "app/up": "->sub/..", "app/sub/keep": "k",
	}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range base {
			m[a] = b
		}
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	cases := []struct {
		name   string
		in     readset.Input
		change map[string]string
		same   bool
	}{
		{"file through a linked folder, content edited", readset.Input{Path: "app/link/x.yaml", Access: readset.File}, with("a/x.yaml", "two"), false},
		{"file through a linked folder, link retargeted to equal content", readset.Input{Path: "app/link/x.yaml", Access: readset.File}, with("app/link", "->../b"), false},
		{"file through a linked folder, a sibling edited", readset.Input{Path: "app/link/x.yaml", Access: readset.File}, with("a/other", "y"), true},
		{"a linked file edited", readset.Input{Path: "app/file", Access: readset.File}, with("a/x.yaml", "three"), false},
		{"stat ignores content", readset.Input{Path: "a/x.yaml", Access: readset.Stat}, with("a/x.yaml", "four"), true},
		{"stat sees removal", readset.Input{Path: "a/x.yaml", Access: readset.Stat}, with("a/x.yaml", ""), false},
		{"absent path appears", readset.Input{Path: "a/new.yaml", Access: readset.Stat}, with("a/new.yaml", "n"), false},
		{"list ignores content", readset.Input{Path: "a", Access: readset.List}, with("a/x.yaml", "five"), true},
		{"list sees an addition", readset.Input{Path: "a", Access: readset.List}, with("a/y.yaml", "n"), false},
		{"tree sees content", readset.Input{Path: "a", Access: readset.Tree}, with("a/x.yaml", "six"), false},
		{"tree follows its links out", readset.Input{Path: "app", Access: readset.Tree}, with("a/x.yaml", "seven"), false},
		{"tree ignores what its links do not reach", readset.Input{Path: "app", Access: readset.Tree}, with("b/x.yaml", "eight"), true},
		{"dot-dot after a symlink climbs from its target", readset.Input{Path: "app/up/sub/keep", Access: readset.File}, with("app/sub/keep", "kk"), false},
		{"unrelated folder", readset.Input{Path: "a/x.yaml", Access: readset.File}, with("c/new", "n"), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before, err := valueOf(t, base, c.in)
			if err != nil {
				t.Fatal(err)
			}
			after, err := valueOf(t, c.change, c.in)
			if err != nil {
				t.Fatal(err)
			}
			if (before == after) != c.same {
				t.Fatalf("values %q and %q: same=%v, want %v", before, after, before == after, c.same)
			}
		})
	}
}

// TestValuesRefuseWhatCannotBeKeyed: a symlink loop or one leaving the
// repository is not keyable (the render is done again), never a value.
func TestValuesRefuseWhatCannotBeKeyed(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"loop":    {"a/l1": "->l2", "a/l2": "->l1"},
		"escapes": {"a/l1": "->../../outside"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := valueOf(t, files, readset.Input{Path: "a/l1/x", Access: readset.File})
			if !errors.Is(err, readset.ErrNotKeyable) {
				t.Fatalf("got %v, want ErrNotKeyable", err)
			}
		})
	}
}

// TestRecorder: paths are kept relative to the root, exempt folders are
// not inputs, and more than MaxInputs makes the render unkeyed.
func TestRecorder(t *testing.T) {
	root := t.TempDir()
	dep := filepath.Join(t.TempDir(), "dep.tgz")
	r := readset.NewRecorder(root, dep)
	r.Note(filepath.Join(root, "apps", "a", "x.yaml"), readset.File)
	r.Note(filepath.Join(root, "apps", "a", "..", "b"), readset.Stat)
	if !r.Covers(dep) || r.Covers(filepath.Join(os.TempDir(), "elsewhere")) {
		t.Fatal("Covers is wrong about an exempt file or an outside path")
	}
	r.Note(dep, readset.File)
	in, ok := r.Inputs()
	got := []string{}
	for _, i := range in {
		got = append(got, i.Path+":"+string(i.Access))
	}
	if !ok || strings.Join(got, ",") != "apps/a/x.yaml:file,apps/b:stat" {
		t.Fatalf("inputs %v (%v)", got, ok)
	}
	for i := range readset.MaxInputs + 1 {
		r.Note(filepath.Join(root, "f", fmt.Sprint(i)), readset.File)
	}
	if _, ok := r.Inputs(); ok {
		t.Fatal("a render with more than MaxInputs inputs was keyed")
	}
	r2 := readset.NewRecorder(root)
	r2.Spoil()
	if _, ok := r2.Inputs(); ok {
		t.Fatal("a spoiled recorder was keyed")
	}
}

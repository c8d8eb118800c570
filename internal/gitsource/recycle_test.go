package gitsource

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/keyless-cd/keyless/internal/gitserver"
)

// modelEntry is a file of the model tree: a file's content (exec: its
// executable bit) or a symlink's target.
type modelEntry struct {
	content string
	exec    bool
	link    bool
}

// rawTree turns a model (slash path → entry) into the nested entries of
// gitserver.CommitRaw.
func rawTree(model map[string]modelEntry) []gitserver.RawEntry {
	type node struct {
		entry    *modelEntry
		children map[string]*node
	}
	root := &node{children: map[string]*node{}}
	for p, e := range model {
		n := root
		parts := strings.Split(p, "/")
		for _, part := range parts[:len(parts)-1] {
			if n.children[part] == nil {
				n.children[part] = &node{children: map[string]*node{}}
			}
			n = n.children[part]
		}
		n.children[parts[len(parts)-1]] = &node{entry: &e}
	}
	var build func(n *node) []gitserver.RawEntry
	build = func(n *node) []gitserver.RawEntry {
		out := []gitserver.RawEntry{}
		for name, c := range n.children {
			switch {
			case c.entry == nil:
				out = append(out, gitserver.RawEntry{Name: name, Mode: filemode.Dir, Entries: build(c)})
			case c.entry.link:
				out = append(out, gitserver.RawEntry{Name: name, Mode: filemode.Symlink, Content: c.entry.content})
			case c.entry.exec:
				out = append(out, gitserver.RawEntry{Name: name, Mode: filemode.Executable, Content: c.entry.content})
			default:
				out = append(out, gitserver.RawEntry{Name: name, Content: c.entry.content})
			}
		}
		return out
	}
	return build(root)
}

// listTree describes every entry below dir, links not followed: folders
// with their permissions, files with theirs and their content, symlinks
// with their target.
func listTree(t testing.TB, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			got[rel] = "link " + target
		case fi.IsDir():
			got[rel] = fmt.Sprintf("dir %o", fi.Mode().Perm())
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			got[rel] = fmt.Sprintf("file %o %q", fi.Mode().Perm(), b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// wantTree is listTree's description of the model's checkout.
func wantTree(model map[string]modelEntry) map[string]string {
	want := map[string]string{".": "dir 555"}
	for p, e := range model {
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			want[filepath.FromSlash(d)] = "dir 555"
		}
		switch {
		case e.link:
			want[filepath.FromSlash(p)] = "link " + e.content
		case e.exec:
			want[filepath.FromSlash(p)] = fmt.Sprintf("file 555 %q", e.content)
		default:
			want[filepath.FromSlash(p)] = fmt.Sprintf("file 444 %q", e.content)
		}
	}
	return want
}

// mutate applies one random change to the model: a file edited, added
// (in a new folder or an existing one), deleted, made executable or not,
// a folder moved, a symlink to another entry added, a file turned into a
// folder or a folder into a file.
func mutate(r *rand.Rand, model map[string]modelEntry, step int) {
	paths := make([]string, 0, len(model))
	for p := range model {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	pick := func() string { return paths[r.IntN(len(paths))] }
	isDir := func(d string) bool {
		for p := range model {
			if strings.HasPrefix(p, d+"/") {
				return true
			}
		}
		return false
	}
	free := func(p string) bool {
		if _, taken := model[p]; taken || isDir(p) {
			return false
		}
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if _, file := model[d]; file {
				return false
			}
		}
		return true
	}
	switch op := r.IntN(9); {
	case op == 0 && len(paths) > 0: // edit
		p := pick()
		e := model[p]
		if !e.link {
			e.content = fmt.Sprintf("edited %d\n", step)
			model[p] = e
		}
	case op == 1 && len(paths) > 2: // delete
		delete(model, pick())
	case op == 2 && len(paths) > 0: // executable bit
		p := pick()
		if e := model[p]; !e.link {
			e.exec = !e.exec
			model[p] = e
		}
	case op == 3 && len(paths) > 0: // move the folder of a file
		d := path.Dir(pick())
		to := fmt.Sprintf("moved-%d", step)
		if d == "." || !free(to) {
			return
		}
		for p, e := range model {
			if strings.HasPrefix(p, d+"/") {
				delete(model, p)
				model[to+"/"+strings.TrimPrefix(p, d+"/")] = e
			}
		}
	case op == 4 && len(paths) > 0: // symlink to another entry, relative
		target := pick()
		at := path.Join(path.Dir(pick()), fmt.Sprintf("link-%d", step))
		if !free(at) {
			return
		}
		rel, err := filepath.Rel(path.Dir(at), target)
		if err != nil {
			return
		}
		if r.IntN(3) == 0 && path.Dir(target) != "." { // to a folder
			rel, _ = filepath.Rel(path.Dir(at), path.Dir(target))
		}
		model[at] = modelEntry{content: filepath.ToSlash(rel), link: true}
	case op == 5 && len(paths) > 0: // a file becomes a folder
		p := pick()
		if _, ok := model[p]; ok && !isDir(p) {
			delete(model, p)
			model[p+"/inner.yaml"] = modelEntry{content: fmt.Sprintf("inner %d\n", step)}
		}
	case op == 6 && len(paths) > 0: // a folder becomes a file
		d := path.Dir(pick())
		if d == "." {
			return
		}
		for p := range model {
			if strings.HasPrefix(p, d+"/") {
				delete(model, p)
			}
		}
		model[d] = modelEntry{content: fmt.Sprintf("was a folder %d\n", step)}
	default: // add a file, in a new folder or beside an existing file
		dir := fmt.Sprintf("apps/app-%d", r.IntN(6))
		if len(paths) > 0 && r.IntN(2) == 0 {
			dir = path.Dir(pick())
		}
		p := path.Join(dir, fmt.Sprintf("f-%d.yaml", step))
		if free(p) {
			model[p] = modelEntry{content: fmt.Sprintf("new %d\n", step)}
		}
	}
}

// recyclingSource is a Git server with an empty repository "app" and a
// Source keeping one checkout: each checkout recycles the previous one.
func recyclingSource(t *testing.T) (*gitserver.Server, *Source) {
	t.Helper()
	srv := startGitServer(t)
	if err := srv.CreateRepo(t.Context(), "app", "main"); err != nil {
		t.Fatal(err)
	}
	src, err := New(Options{CacheDir: t.TempDir(), LsRemoteTTL: time.Nanosecond, KeepCheckouts: 1})
	if err != nil {
		t.Fatal(err)
	}
	return srv, src
}

// TestRecycledCheckoutsEqualFullOnes: a checkout patched from the one the
// cache would have deleted (KeepCheckouts 1: every checkout recycles the
// previous one) holds exactly what the commit holds — files, permissions,
// symlinks, folders — at every one of 60 random commits (edits, deletes,
// moves, symlinks to files and folders, files turned into folders and
// back), and a folder the commit did not touch is the same folder as
// before (patched, not written anew).
func TestRecycledCheckoutsEqualFullOnes(t *testing.T) {
	srv, src := recyclingSource(t)
	model := map[string]modelEntry{"README.md": {content: "hi\n"}, "base/cm.yaml": {content: "base\n"}, "untouched/keep.yaml": {content: "keep\n"}}
	for i := range 4 {
		model[fmt.Sprintf("apps/app-%d/deploy.yaml", i)] = modelEntry{content: fmt.Sprintf("app %d\n", i)}
	}
	r := rand.New(rand.NewPCG(40, 1))
	var untouched uint64
	recycled := 0
	for step := range 60 {
		if step > 0 {
			for range 1 + r.IntN(3) {
				mutate(r, model, step)
			}
			model["untouched/keep.yaml"] = modelEntry{content: "keep\n"}
		}
		if _, err := srv.CommitRaw(t.Context(), "app", "main", rawTree(model)); err != nil {
			t.Fatal(err)
		}
		dir := checkoutHead(t, srv, src)
		requireTree(t, dir, model, step)
		fi, err := os.Stat(filepath.Join(dir, "untouched"))
		if err != nil {
			t.Fatal(err)
		}
		ino := fi.Sys().(*syscall.Stat_t).Ino
		if step > 0 && ino == untouched {
			recycled++
		}
		untouched = ino
		if entries, _ := os.ReadDir(filepath.Dir(dir)); len(entries) != 2 {
			t.Fatalf("step %d: the cache holds %d entries, want one checkout and its record", step, len(entries))
		}
	}
	if recycled < 55 {
		t.Errorf("an untouched folder was kept in %d of 59 checkouts, want (nearly) all: the checkouts were written anew", recycled)
	}
}

// TestRecycleRefusesWhatAFullCheckoutRefuses: a commit whose tree a
// checkout refuses (a symlink chain leaving it, a name twice) is refused
// when patched into a recycled folder too, and the next good commit is
// checked out whole.
func TestRecycleRefusesWhatAFullCheckoutRefuses(t *testing.T) {
	srv, src := recyclingSource(t)
	good := []gitserver.RawEntry{{Name: "a", Entries: []gitserver.RawEntry{{Name: "cm.yaml", Content: "x"}}}, {Name: "d", Mode: filemode.Dir, Entries: []gitserver.RawEntry{{Name: "f", Content: "y"}}}}
	if _, err := srv.CommitRaw(t.Context(), "app", "main", good); err != nil {
		t.Fatal(err)
	}
	checkoutHead(t, srv, src)
	url := srv.RepoURL("app")
	for name, tree := range map[string][]gitserver.RawEntry{
		"a chain of links leaving it": append(good[:1:1], gitserver.RawEntry{Name: "d", Mode: filemode.Symlink, Content: "."}, gitserver.RawEntry{Name: "e", Mode: filemode.Symlink, Content: "d/.."}),
		"a name twice":                append(good[:2:2], gitserver.RawEntry{Name: "d", Content: "z"}),
		"too many files":              {{Name: "a", Entries: []gitserver.RawEntry{{Name: "1"}, {Name: "2"}, {Name: "3"}, {Name: "4"}, {Name: "5"}, {Name: "6"}}}},
	} {
		t.Run(name, func(t *testing.T) {
			src.opts.MaxCheckoutFiles = 5
			defer func() { src.opts.MaxCheckoutFiles = 20000 }()
			sha, err := srv.CommitRaw(t.Context(), "app", "main", tree)
			if err != nil {
				t.Fatal(err)
			}
			rev, err := src.Resolve(t.Context(), url, "main", nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := src.Fetch(t.Context(), url, rev, nil); err != nil {
				t.Fatal(err)
			}
			if dir, release, err := src.Checkout(t.Context(), url, sha); err == nil {
				release()
				t.Fatalf("checked out into %s, want a refusal", dir)
			}
			if _, err := srv.CommitRaw(t.Context(), "app", "main", good); err != nil {
				t.Fatal(err)
			}
			dir := checkoutHead(t, srv, src)
			if got := listTree(t, dir); len(got) != 5 || got["a/cm.yaml"] != `file 444 "x"` || got["d/f"] != `file 444 "y"` {
				t.Fatalf("the next good commit holds %v", got)
			}
		})
	}
}

// FuzzPatchTree: patching the checkout of one tree into another gives
// what writing the second in full gives — the same files, or a refusal
// when the full write refuses — and writes nothing outside the checkout.
func FuzzPatchTree(f *testing.F) {
	for _, seed := range [][2]string{
		{"f|a|1\nd|b|x", "f|a|2\nd|b|y"},
		{"d|x|config", "l|x|../outside"},
		{"f|a|1", "l|d|.\nl|e|d/.."},
		{"d|d|f\nl|l|d/f", "f|d|now a file\nl|l|d/f"},
		{"x|run.sh|a", "f|run.sh|a"},
		{"f|a|1\ns|sub|", "s|a|\nf|sub|2"},
		{"d|deploy|cm.yaml\nf|README|hi", "d|deploy|cm.yaml\nf|README|hi\nf|a|1\nf|a|2"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, from, to string) {
		st := memory.NewStorage()
		old, next := fuzzTree(t, st, from), fuzzTree(t, st, to)
		if old == nil || next == nil {
			return
		}
		parent := t.TempDir()
		sentinel := filepath.Join(parent, "sentinel")
		if err := os.WriteFile(sentinel, []byte("untouched"), 0o600); err != nil {
			t.Fatal(err)
		}
		full, patched := filepath.Join(parent, "full"), filepath.Join(parent, "patched")
		for _, d := range []string{full, patched} {
			if err := os.Mkdir(d, 0o700); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = removeTree(d) }()
		}
		stats, err := writeTree(t.Context(), st, old, patched, 100, 1<<20, nil)
		if err != nil {
			return
		}
		want, fullErr := writeTree(t.Context(), st, next, full, 100, 1<<20, nil)
		got, patchErr := patchTree(t.Context(), st, next, old, patched, 100, 1<<20, stats)
		if entries, err := os.ReadDir(parent); err != nil || len(entries) != 3 {
			t.Fatalf("something was written beside the checkouts: %v %v", entries, err)
		}
		if b, _ := os.ReadFile(sentinel); string(b) != "untouched" {
			t.Fatal("a file outside the checkout was changed")
		}
		if fullErr != nil {
			if patchErr == nil {
				t.Fatalf("a full checkout refuses the tree (%v), patching did not", fullErr)
			}
			return
		}
		if patchErr != nil {
			t.Fatalf("a full checkout writes the tree, patching refused it: %v", patchErr)
		}
		_ = os.Chmod(patched, 0o700) // as the full one: the caller makes the top read-only
		a, b := listTree(t, full), listTree(t, patched)
		for p, w := range a {
			if b[p] != w {
				t.Errorf("%s: patched %q, full %q", p, b[p], w)
			}
		}
		for p, g := range b {
			if _, ok := a[p]; !ok {
				t.Errorf("%s (%s): patched only", p, g)
			}
		}
		if got.files != want.files || got.bytes != want.bytes || len(got.links) != len(want.links) {
			t.Errorf("patched holds %d files, %d bytes, %d links; a full checkout %d, %d, %d", got.files, got.bytes, len(got.links), want.files, want.bytes, len(want.links))
		}
	})
}

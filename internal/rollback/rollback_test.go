package rollback_test

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/keyless-cd/keyless/internal/bump"
	"github.com/keyless-cd/keyless/internal/gitserver"
	"github.com/keyless-cd/keyless/internal/rollback"
)

// history is a repository on a real Git server with two commits: good
// (web v1, api a1) then bad (web v2 with a file added and one removed,
// api a2).
type history struct {
	srv       *gitserver.Server
	url       string
	good, bad string
}

func newHistory(t *testing.T) *history {
	t.Helper()
	srv, err := gitserver.Start(gitserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	ctx := t.Context()
	if err := srv.CreateRepo(ctx, "apps", "main"); err != nil {
		t.Fatal(err)
	}
	h := &history{srv: srv, url: srv.RepoURL("apps")}
	if h.good, err = srv.Commit(ctx, "apps", gitserver.Commit{Message: "good", Files: map[string]string{
		"deploy/web/cm.yaml": "color: blue\n", "deploy/web/old.yaml": "old: true\n", "deploy/web.yaml": "a sibling file\n",
		"deploy/api/x.yaml": "api: a1\n", "values/web.yaml": "tag: v1\n",
	}}); err != nil {
		t.Fatal(err)
	}
	if h.bad, err = srv.Commit(ctx, "apps", gitserver.Commit{Message: "bad", Files: map[string]string{
		"deploy/web/cm.yaml": "color: red\n", "deploy/web/sub/new.yaml": "new: true\n", "deploy/api/x.yaml": "api: a2\n",
		"values/web.yaml": "tag: v2\n",
	}, Delete: []string{"deploy/web/old.yaml"}}); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *history) tip(t *testing.T) *object.Commit {
	t.Helper()
	repo, err := git.CloneContext(t.Context(), memory.NewStorage(), nil, &git.CloneOptions{URL: h.url})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := repo.Head()
	if err != nil {
		t.Fatal(err)
	}
	c, err := repo.CommitObject(ref.Hash())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func files(t *testing.T, c *object.Commit) map[string]string {
	t.Helper()
	out := map[string]string{}
	iter, err := c.Files()
	if err != nil {
		t.Fatal(err)
	}
	_ = iter.ForEach(func(f *object.File) error {
		s, err := f.Contents()
		out[f.Name] = s
		return err
	})
	return out
}

var ada = bump.Identity{Name: "Ada Operator", Email: "ada@example.com"}

func TestRollbackRestoresThePathsOnly(t *testing.T) {
	h := newHistory(t)
	ctx := t.Context()
	p, err := rollback.Prepare(ctx, rollback.Options{
		RepoURL: h.url, Paths: []string{"deploy/web", "values/web.yaml"}, To: h.good[:10], Application: "team-a/web",
		Author: ada, Trailers: []string{"Pipeline: https://ci.example.com/1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Tip != h.bad || p.To != h.good || p.ToSubject != "good" || p.Commit == "" {
		t.Fatalf("plan = %+v", p)
	}
	if err := p.Push(ctx); err != nil {
		t.Fatal(err)
	}
	c := h.tip(t)
	if c.Hash.String() != p.Commit || c.ParentHashes[0].String() != h.bad {
		t.Fatalf("tip %s (parent %v), want the rollback %s on %s", c.Hash, c.ParentHashes, p.Commit, h.bad)
	}
	want := map[string]string{
		"deploy/web/cm.yaml": "color: blue\n", "deploy/web/old.yaml": "old: true\n", "deploy/web.yaml": "a sibling file\n",
		"deploy/api/x.yaml": "api: a2\n", "values/web.yaml": "tag: v1\n",
	}
	got := files(t, c)
	if len(got) != len(want) {
		t.Errorf("files after rollback = %v, want %v", got, want)
	}
	for name, content := range want {
		if got[name] != content {
			t.Errorf("%s = %q, want %q (restored paths at the good commit, the rest at the tip)", name, got[name], content)
		}
	}
	if c.Author.Name != ada.Name || c.Author.Email != ada.Email || c.Committer.Email != ada.Email {
		t.Errorf("author %v committer %v, want Ada", c.Author, c.Committer)
	}
	for _, s := range []string{"Roll back team-a/web to " + h.good[:12], "Rollback-To: " + h.good, "Rollback-From: " + h.bad, "Pipeline: https://ci.example.com/1"} {
		if !strings.Contains(c.Message, s) {
			t.Errorf("message lacks %q:\n%s", s, c.Message)
		}
	}
	// The trees were written by hand: Git itself must find them well formed.
	if out, err := exec.Command("git", "-C", filepath.Join(h.srv.Root(), "apps.git"), "fsck", "--strict", "--no-dangling").CombinedOutput(); err != nil {
		t.Errorf("git fsck: %v\n%s", err, out)
	}

	// Rolling back to what the paths already hold changes nothing.
	again, err := rollback.Prepare(ctx, rollback.Options{RepoURL: h.url, Paths: []string{"deploy/web"}, To: h.good, Author: ada})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if again.Commit != "" {
		t.Errorf("a rollback to the content already there made commit %s", again.Commit)
	}
}

func TestRollbackRetriesWhenTheBranchMoves(t *testing.T) {
	h := newHistory(t)
	ctx := t.Context()
	p, err := rollback.Prepare(ctx, rollback.Options{RepoURL: h.url, Paths: []string{"deploy/web"}, To: h.good, Author: ada})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	other, err := h.srv.Commit(ctx, "apps", gitserver.Commit{Message: "meanwhile", Files: map[string]string{"deploy/api/x.yaml": "api: a3\n"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Push(ctx); err != nil {
		t.Fatal(err)
	}
	c := h.tip(t)
	if p.Attempts != 2 || c.ParentHashes[0].String() != other {
		t.Fatalf("attempts %d, parent %v; want 2 and the commit pushed meanwhile %s", p.Attempts, c.ParentHashes, other)
	}
	if got := files(t, c); got["deploy/api/x.yaml"] != "api: a3\n" || got["deploy/web/cm.yaml"] != "color: blue\n" {
		t.Errorf("after the retry: %v", got)
	}
}

func TestRollbackRefusesARevisionOutsideTheBranch(t *testing.T) {
	h := newHistory(t)
	ctx := t.Context()
	side, err := h.srv.Commit(ctx, "apps", gitserver.Commit{Branch: "side", Message: "side", Files: map[string]string{"x": "y\n"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, to := range []string{side, "0123456789abcdef0123456789abcdef01234567", "nope"} {
		_, err := rollback.Prepare(ctx, rollback.Options{RepoURL: h.url, Branch: "main", Paths: []string{"deploy/web"}, To: to, Author: ada})
		if !errors.Is(err, rollback.ErrNotInHistory) {
			t.Errorf("--to %s: err = %v, want ErrNotInHistory", to, err)
		}
	}
	if _, err := rollback.Prepare(ctx, rollback.Options{RepoURL: h.url, Paths: []string{"../etc"}, To: h.good, Author: ada}); err == nil {
		t.Error("a path climbing out of the repository was accepted")
	}
}

package bump

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/keyless-cd/keyless/internal/gitserver"
)

const token = "glpat-bump"

func newRepo(t *testing.T, files map[string]string) (*gitserver.Server, string) {
	t.Helper()
	srv, err := gitserver.Start(gitserver.Options{Root: t.TempDir(), Token: token})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	if err := srv.CreateRepo(t.Context(), "app", "main"); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Commit(t.Context(), "app", gitserver.Commit{Files: files, Message: "initial"}); err != nil {
		t.Fatal(err)
	}
	return srv, srv.RepoURL("app")
}

func headCommit(t *testing.T, url string) (*object.Commit, *git.Repository) {
	t.Helper()
	r, err := git.CloneContext(t.Context(), memory.NewStorage(), nil, &git.CloneOptions{URL: url, Auth: &githttp.BasicAuth{Username: "x", Password: token}})
	if err != nil {
		t.Fatal(err)
	}
	head, err := r.Head()
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.CommitObject(head.Hash())
	if err != nil {
		t.Fatal(err)
	}
	return c, r
}

func fileAt(t *testing.T, c *object.Commit, name string) string {
	t.Helper()
	f, err := c.File(name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := f.Contents()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRunCommitsAndPushesWithAttribution(t *testing.T) {
	_, url := newRepo(t, map[string]string{"values/myapp.yml": "image:\n  tag: v1 # set by CI\n"})
	env := map[string]string{
		"GITLAB_CI": "true", "GITLAB_USER_NAME": "Dana Developer", "GITLAB_USER_EMAIL": "dana@example.com",
		"CI_PIPELINE_URL": "https://gitlab.example.com/myorg/myapp/-/pipelines/42", "CI_COMMIT_SHA": "0123abcd",
	}
	author, trailers := FromCIEnv(func(k string) string { return env[k] })
	res, err := Run(t.Context(), Request{File: "values/myapp.yml", Sets: sets(t, "image.tag=v2")}, Options{
		RepoURL: url, Auth: &githttp.BasicAuth{Username: "gitlab-ci-token", Password: token}, Push: true,
		Committer: Identity{Name: "CI", Email: "ci@example.com"}, Author: author, Trailers: trailers, SkipCI: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := headCommit(t, url)
	if c.Hash.String() != res.Commit || res.Attempts != 1 || res.UpToDate {
		t.Fatalf("result %+v, head %s", res, c.Hash)
	}
	if got := fileAt(t, c, "values/myapp.yml"); got != "image:\n  tag: v2 # set by CI\n" {
		t.Fatalf("file = %q", got)
	}
	if c.Author.Name != "Dana Developer" || c.Author.Email != "dana@example.com" || c.Committer.Name != "CI" || c.Committer.Email != "ci@example.com" {
		t.Fatalf("author %v committer %v", c.Author, c.Committer)
	}
	wantMsg := "chore(deploy): values/myapp.yml image.tag=v2 [skip ci]\n\nPipeline: https://gitlab.example.com/myorg/myapp/-/pipelines/42\nSource-Commit: 0123abcd\n"
	if c.Message != wantMsg {
		t.Fatalf("message %q, want %q", c.Message, wantMsg)
	}

	// Same value again: no commit, "already up to date".
	res, err = Run(t.Context(), Request{File: "values/myapp.yml", Sets: sets(t, "image.tag=v2")}, Options{
		RepoURL: url, Auth: &githttp.BasicAuth{Username: "x", Password: token}, Push: true, Committer: Identity{Name: "CI", Email: "ci@example.com"},
	})
	if err != nil || !res.UpToDate || res.Commit != "" {
		t.Fatalf("no-op: %+v %v", res, err)
	}
	if c2, _ := headCommit(t, url); c2.Hash != c.Hash {
		t.Fatal("a no-op bump made a commit")
	}
}

func TestGitHubAttribution(t *testing.T) {
	env := map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_ACTOR": "octocat", "GITHUB_SERVER_URL": "https://github.com",
		"GITHUB_REPOSITORY": "myorg/myapp", "GITHUB_RUN_ID": "99", "GITHUB_SHA": "feedbeef"}
	author, trailers := FromCIEnv(func(k string) string { return env[k] })
	if author == nil || author.Name != "octocat" || author.Email != "octocat@users.noreply.github.com" {
		t.Fatalf("author %+v", author)
	}
	if strings.Join(trailers, "|") != "Pipeline: https://github.com/myorg/myapp/actions/runs/99|Source-Commit: feedbeef" {
		t.Fatalf("trailers %v", trailers)
	}
	if a, tr := FromCIEnv(func(string) string { return "" }); a != nil || tr != nil {
		t.Fatalf("no CI: %v %v", a, tr)
	}
}

// TestConcurrentBumpsAllLand: 20 pipelines bump different keys of one file at
// once; every change lands and the history has 20 bump commits.
func TestConcurrentBumpsAllLand(t *testing.T) {
	var b strings.Builder
	for i := range 20 {
		fmt.Fprintf(&b, "svc%02d:\n  tag: v0\n", i)
	}
	_, url := newRepo(t, map[string]string{"values.yaml": b.String()})
	var wg sync.WaitGroup
	errs := make([]error, 20)
	attempts := make([]int, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := Run(t.Context(), Request{File: "values.yaml", Sets: sets(t, fmt.Sprintf("svc%02d.tag=v%d", i, i+1))}, Options{
				RepoURL: url, Auth: &githttp.BasicAuth{Username: "x", Password: token}, Push: true,
				Committer: Identity{Name: "CI", Email: "ci@example.com"},
			})
			errs[i] = err
			if res != nil {
				attempts[i] = res.Attempts
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("bump %d: %v", i, err)
		}
	}
	c, r := headCommit(t, url)
	content := fileAt(t, c, "values.yaml")
	for i := range 20 {
		if !strings.Contains(content, fmt.Sprintf("svc%02d:\n  tag: v%d\n", i, i+1)) {
			t.Errorf("svc%02d lost:\n%s", i, content)
		}
	}
	bumps := 0
	iter, err := r.Log(&git.LogOptions{From: c.Hash})
	if err != nil {
		t.Fatal(err)
	}
	_ = iter.ForEach(func(c *object.Commit) error {
		if strings.HasPrefix(c.Message, "chore(deploy):") {
			bumps++
		}
		return nil
	})
	if bumps != 20 {
		t.Fatalf("history has %d bump commits, want 20", bumps)
	}
	t.Logf("attempts per bump: %v", attempts)
}

// TestConcurrentSameKey: 20 bumps of one key; each lands as its own commit
// (no commit of another key lost) and the file ends with the last pushed value.
func TestConcurrentSameKey(t *testing.T) {
	_, url := newRepo(t, map[string]string{"values.yaml": "image:\n  tag: v0\nother: keep\n"})
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := Run(t.Context(), Request{File: "values.yaml", Sets: sets(t, fmt.Sprintf("image.tag=v%d", i+1))}, Options{
				RepoURL: url, Auth: &githttp.BasicAuth{Username: "x", Password: token}, Push: true,
				Committer: Identity{Name: "CI", Email: "ci@example.com"},
			}); err != nil {
				t.Errorf("bump %d: %v", i, err)
			}
		}()
	}
	other := make(chan error, 1)
	go func() {
		_, err := Run(t.Context(), Request{File: "values.yaml", Sets: sets(t, "other=changed")}, Options{
			RepoURL: url, Auth: &githttp.BasicAuth{Username: "x", Password: token}, Push: true,
			Committer: Identity{Name: "CI", Email: "ci@example.com"},
		})
		other <- err
	}()
	wg.Wait()
	if err := <-other; err != nil {
		t.Fatal(err)
	}
	c, _ := headCommit(t, url)
	content := fileAt(t, c, "values.yaml")
	if !strings.Contains(content, "other: changed") {
		t.Fatalf("the other key's change was lost:\n%s", content)
	}
	// The final tag is the one of the newest commit that set it.
	want := ""
	for cur := c; cur != nil; {
		if strings.Contains(cur.Message, "image.tag=") {
			want = strings.TrimSpace(strings.SplitN(strings.SplitN(cur.Message, "image.tag=", 2)[1], "\n", 2)[0])
			break
		}
		if cur.NumParents() == 0 {
			break
		}
		p, err := cur.Parent(0)
		if err != nil {
			break
		}
		cur = p
	}
	if !strings.Contains(content, "tag: "+want+"\n") {
		t.Fatalf("final tag is not the last pushed value %q:\n%s", want, content)
	}
	_ = plumbing.ZeroHash
}

// TestEditRefusesSymlinks: a committed symlink (to a file elsewhere, or a
// folder on the way) must not make bump edit what it points to.
func TestEditRefusesSymlinks(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "values.yaml")
	if err := os.WriteFile(secret, []byte("image:\n  tag: keep\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := os.Symlink(secret, filepath.Join(root, "values.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "linked")); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{"values.yaml", "linked/values.yaml"} {
		_, _, err := EditFile(root, Request{File: file, Sets: []SetValue{mustSet(t, "image.tag=evil")}})
		if !errors.Is(err, ErrSymlink) {
			t.Fatalf("%s: err = %v, want ErrSymlink", file, err)
		}
	}
	if b, _ := os.ReadFile(secret); string(b) != "image:\n  tag: keep\n" {
		t.Fatalf("the file behind the symlink was edited: %q", b)
	}
}

func mustSet(t *testing.T, s string) SetValue {
	t.Helper()
	v, err := ParseSet(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// fullJitter waits a uniform time below min(5s, 100ms·2^(n-1)): spread out
// from the first retry, never longer than the cap.
func TestFullJitterBounds(t *testing.T) {
	for _, tc := range []struct {
		n       int
		ceiling time.Duration
	}{{1, 100 * time.Millisecond}, {2, 200 * time.Millisecond}, {4, 800 * time.Millisecond}, {7, 5 * time.Second}, {40, 5 * time.Second}} {
		var longest time.Duration
		for range 2000 {
			d := fullJitter(tc.n)
			if d < 0 || d >= tc.ceiling {
				t.Fatalf("fullJitter(%d) = %s, want in [0, %s)", tc.n, d, tc.ceiling)
			}
			longest = max(longest, d)
		}
		if longest < tc.ceiling/2 {
			t.Errorf("fullJitter(%d): longest of 2000 waits %s, want spread up to %s", tc.n, longest, tc.ceiling)
		}
	}
}

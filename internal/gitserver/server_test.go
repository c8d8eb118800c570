package gitserver_test

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-git/go-billy/v5/memfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/keyless-cd/keyless/internal/gitserver"
)

const token = "glpat-test-token"

func startServer(t *testing.T, opts gitserver.Options) *gitserver.Server {
	t.Helper()
	if opts.Root == "" {
		opts.Root = t.TempDir()
	}
	s, err := gitserver.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

func lsRemote(t *testing.T, url string, auth transport.AuthMethod) (map[string]string, error) {
	t.Helper()
	rem := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{url}})
	refs, err := rem.ListContext(t.Context(), &git.ListOptions{Auth: auth})
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, r := range refs {
		out[r.Name().String()] = r.Hash().String()
	}
	return out, nil
}

func TestCloneCommitPushLsRemote(t *testing.T) {
	s := startServer(t, gitserver.Options{Token: token})
	ctx := t.Context()
	if err := s.CreateRepo(ctx, "myorg/myapp", "main"); err != nil {
		t.Fatal(err)
	}
	url := s.RepoURL("myorg/myapp")
	first, err := s.Commit(ctx, "myorg/myapp", gitserver.Commit{
		Files:   map[string]string{"values/myapp.yml": "image:\n  tag: v1\n"},
		Message: "initial",
	})
	if err != nil {
		t.Fatalf("first commit: %v", err)
	}

	// A developer's clone on disk, a commit and a push, all through go-git over HTTP.
	dir := t.TempDir()
	auth := &githttp.BasicAuth{Username: "ci", Password: token}
	repo, err := git.PlainCloneContext(ctx, dir, false, &git.CloneOptions{URL: url, Auth: auth})
	if err != nil {
		t.Fatalf("clone: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "values/myapp.yml"))
	if err != nil || string(got) != "image:\n  tag: v1\n" {
		t.Fatalf("cloned file = %q, %v", got, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "values/myapp.yml"), []byte("image:\n  tag: v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wt.Add("values/myapp.yml"); err != nil {
		t.Fatal(err)
	}
	sig := &object.Signature{Name: "Dev", Email: "dev@example.com", When: time.Now()}
	second, err := wt.Commit("bump to v2", &git.CommitOptions{Author: sig, Committer: sig})
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.PushContext(ctx, &git.PushOptions{Auth: auth}); err != nil {
		t.Fatalf("push: %v", err)
	}

	refs, err := lsRemote(t, url, auth)
	if err != nil {
		t.Fatalf("ls-remote: %v", err)
	}
	if refs["refs/heads/main"] != second.String() {
		t.Fatalf("ls-remote main = %s, want pushed commit %s (first was %s)", refs["refs/heads/main"], second, first)
	}
	if s.Pushes() != 2 {
		t.Errorf("Pushes() = %d, want 2", s.Pushes())
	}

	// A bearer token works too (GitHub/GitLab style).
	if _, err := lsRemote(t, url, &githttp.TokenAuth{Token: token}); err != nil {
		t.Errorf("ls-remote with bearer token: %v", err)
	}

	// Commit to a new branch and delete a file.
	feature, err := s.Commit(ctx, "myorg/myapp", gitserver.Commit{Branch: "feature", Delete: []string{"values/myapp.yml"}, Files: map[string]string{"README.md": "hi\n"}})
	if err != nil {
		t.Fatal(err)
	}
	refs, err = lsRemote(t, url, auth)
	if err != nil {
		t.Fatal(err)
	}
	if refs["refs/heads/feature"] != feature || refs["refs/heads/main"] != second.String() {
		t.Fatalf("refs after feature commit: %v", refs)
	}
	if err := repo.FetchContext(ctx, &git.FetchOptions{Auth: auth}); err != nil {
		t.Fatal(err)
	}
	c, err := repo.CommitObject(plumbing.NewHash(feature))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.File("values/myapp.yml"); err == nil {
		t.Error("values/myapp.yml still present on feature branch after delete")
	}
	if len(c.ParentHashes) != 1 || c.ParentHashes[0] != second {
		t.Errorf("feature branch parent = %v, want %s", c.ParentHashes, second)
	}
}

func TestWrongTokenIsRefused(t *testing.T) {
	s := startServer(t, gitserver.Options{Token: token})
	if err := s.CreateRepo(t.Context(), "app", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(t.Context(), "app", gitserver.Commit{Files: map[string]string{"a.yaml": "a: 1\n"}}); err != nil {
		t.Fatal(err)
	}
	url := s.RepoURL("app")

	for name, auth := range map[string]transport.AuthMethod{
		"wrong basic password": &githttp.BasicAuth{Username: "ci", Password: "not-the-token"},
		"wrong bearer token":   &githttp.TokenAuth{Token: "not-the-token"},
		"no credentials":       nil,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := lsRemote(t, url, auth)
			if err == nil {
				t.Fatal("ls-remote succeeded with bad credentials")
			}
			_, err = git.CloneContext(t.Context(), memory.NewStorage(), nil, &git.CloneOptions{URL: url, Auth: auth})
			if err == nil {
				t.Fatal("clone succeeded with bad credentials")
			}
		})
	}

	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url+"/info/refs?service=git-upload-pack", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("ci", "not-the-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status = %d, want 401", resp.StatusCode)
	}

	// A push with a wrong token is refused and does not move the branch.
	repo, err := git.CloneContext(t.Context(), memory.NewStorage(), memfs.New(), &git.CloneOptions{URL: url, Auth: s.Auth()})
	if err != nil {
		t.Fatal(err)
	}
	before, _ := repo.Head()
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	sig := &object.Signature{Name: "Mallory", Email: "m@example.com", When: time.Now()}
	if _, err := wt.Commit("sneaky", &git.CommitOptions{Author: sig, AllowEmptyCommits: true}); err != nil {
		t.Fatal(err)
	}
	err = repo.PushContext(t.Context(), &git.PushOptions{Auth: &githttp.BasicAuth{Username: "ci", Password: "other"}})
	if !errors.Is(err, transport.ErrAuthenticationRequired) {
		t.Fatalf("push with a wrong token: got %v, want authentication required (401)", err)
	}
	after, err := lsRemote(t, url, s.Auth())
	if err != nil {
		t.Fatal(err)
	}
	if after["refs/heads/main"] != before.Hash().String() {
		t.Fatal("refused push moved main")
	}
}

func TestDownAnswers503(t *testing.T) {
	s := startServer(t, gitserver.Options{})
	if err := s.CreateRepo(t.Context(), "app", ""); err != nil {
		t.Fatal(err)
	}
	s.SetDown(true)
	resp, err := http.Get(s.RepoURL("app") + "/info/refs?service=git-upload-pack")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503", resp.StatusCode)
	}
	s.SetDown(false)
	if _, err := s.Commit(t.Context(), "app", gitserver.Commit{Files: map[string]string{"a": "b"}}); err != nil {
		t.Fatalf("commit after coming back up: %v", err)
	}
}

func TestCreateRepoRejectsBadNames(t *testing.T) {
	s := startServer(t, gitserver.Options{})
	for _, name := range []string{"../escape", "/abs", "a/../../b", "", "a b"} {
		if err := s.CreateRepo(t.Context(), name, ""); err == nil {
			t.Errorf("CreateRepo(%q) succeeded", name)
		}
	}
}

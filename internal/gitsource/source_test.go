package gitsource

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"

	"github.com/keyless-cd/keyless/internal/gitserver"
)

type counter struct {
	mu  sync.Mutex
	ops map[string]int
}

func (c *counter) observe(op, _ string, _ time.Duration, _ error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ops[op]++
}

func (c *counter) get(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ops[op]
}

// startAppRepo starts a Git server (token "tok") holding an empty
// repository "app" whose default branch is main.
func startAppRepo(t *testing.T) *gitserver.Server {
	t.Helper()
	srv, err := gitserver.Start(gitserver.Options{Root: t.TempDir(), Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	if err := srv.CreateRepo(t.Context(), "app", "main"); err != nil {
		t.Fatal(err)
	}
	return srv
}

func TestResolveFetchCheckout(t *testing.T) {
	ctx := t.Context()
	srv := startAppRepo(t)
	author := &object.Signature{Name: "Alice", Email: "alice@example.com", When: time.Now()}
	first, err := srv.Commit(ctx, "app", gitserver.Commit{Files: map[string]string{"deploy/cm.yaml": "a: 1\n", "README.md": "hi\n"}, Message: "first\n\nbody", Author: author})
	if err != nil {
		t.Fatal(err)
	}
	cnt := &counter{ops: map[string]int{}}
	src, err := New(Options{CacheDir: t.TempDir(), LsRemoteTTL: time.Nanosecond, Observe: cnt.observe})
	if err != nil {
		t.Fatal(err)
	}
	url := srv.RepoURL("app")
	auth := &githttp.BasicAuth{Username: "x", Password: "tok"}

	for _, rev := range []string{"main", "", "HEAD", "refs/heads/main", first} {
		got, err := src.Resolve(ctx, url, rev, auth)
		if err != nil || got.SHA != first {
			t.Fatalf("Resolve(%q) = %+v, %v; want %s", rev, got, err, first)
		}
	}
	rev, _ := src.Resolve(ctx, url, "main", auth)
	if err := src.Fetch(ctx, url, rev, auth); err != nil {
		t.Fatal(err)
	}
	if err := src.Fetch(ctx, url, rev, auth); err != nil {
		t.Fatal(err)
	}
	if n := cnt.get("fetch"); n != 1 {
		t.Errorf("fetches = %d, want 1 (no fetch when the commit is cached)", n)
	}
	dir, release, err := src.Checkout(t.Context(), url, first)
	if err != nil {
		t.Fatal(err)
	}
	release()
	if b, err := os.ReadFile(filepath.Join(dir, "deploy", "cm.yaml")); err != nil || string(b) != "a: 1\n" {
		t.Fatalf("checkout content %q, %v", b, err)
	}
	info, err := src.CommitInfo(url, first)
	if err != nil {
		t.Fatal(err)
	}
	if info.Author != "Alice <alice@example.com>" || info.Message != "first" {
		t.Errorf("commit info %+v", info)
	}

	// A new commit moves the branch; the next resolve sees it and fetch gets it.
	second, err := srv.Commit(ctx, "app", gitserver.Commit{Files: map[string]string{"deploy/cm.yaml": "a: 2\n"}})
	if err != nil {
		t.Fatal(err)
	}
	rev, err = src.Resolve(ctx, url, "main", auth)
	if err != nil || rev.SHA != second {
		t.Fatalf("after push: %+v %v", rev, err)
	}
	if err := src.Fetch(ctx, url, rev, auth); err != nil {
		t.Fatal(err)
	}
	dir, release, err = src.Checkout(t.Context(), url, second)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if b, _ := os.ReadFile(filepath.Join(dir, "deploy", "cm.yaml")); string(b) != "a: 2\n" {
		t.Fatalf("second checkout %q", b)
	}

	// Errors say what to do.
	_, err = src.Resolve(ctx, url, "main", &githttp.BasicAuth{Username: "x", Password: "wrong"})
	if !errors.Is(err, transport.ErrAuthenticationRequired) || !strings.Contains(err.Error(), "secretRef") {
		t.Errorf("wrong credential: %v", err)
	}
	_, err = src.Resolve(ctx, url, "nope", auth)
	if err == nil || !strings.Contains(err.Error(), `revision "nope" not found`) || !strings.Contains(err.Error(), "main") {
		t.Errorf("missing branch: %v", err)
	}
}

func TestLsRemoteIsSharedOnlyWithTheSameCredential(t *testing.T) {
	ctx := t.Context()
	srv, err := gitserver.Start(gitserver.Options{Root: t.TempDir(), Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	if err := srv.CreateRepo(ctx, "app", "main"); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Commit(ctx, "app", gitserver.Commit{Files: map[string]string{"a": "b"}}); err != nil {
		t.Fatal(err)
	}
	src, err := New(Options{CacheDir: t.TempDir(), LsRemoteTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	url := srv.RepoURL("app")
	if _, err := src.Resolve(ctx, url, "main", &githttp.BasicAuth{Username: "x", Password: "tok"}); err != nil {
		t.Fatal(err)
	}
	// Within the TTL, another caller with a wrong credential must still be refused.
	if _, err := src.Resolve(ctx, url, "main", &githttp.BasicAuth{Username: "x", Password: "wrong"}); err == nil {
		t.Fatal("a cached ls-remote was served to a caller with a wrong credential")
	}
	if _, err := src.Resolve(ctx, url, "main", nil); err == nil {
		t.Fatal("a cached ls-remote was served to a caller without credentials")
	}
}

func TestAuthFromSecret(t *testing.T) {
	a, err := AuthFromSecret("https://git.example.com/a.git", map[string][]byte{"username": []byte("u"), "password": []byte("p")})
	if err != nil || a.(*githttp.BasicAuth).Password != "p" {
		t.Fatalf("basic: %v %v", a, err)
	}
	a, err = AuthFromSecret("https://git.example.com/a.git", map[string][]byte{"bearerToken": []byte("t")})
	if err != nil || a.(*githttp.TokenAuth).Token != "t" {
		t.Fatalf("bearer: %v %v", a, err)
	}
	if _, err := AuthFromSecret("ssh://git@git.example.com/a.git", map[string][]byte{"identity": []byte("not a key"), "known_hosts": []byte("x")}); err == nil || strings.Contains(err.Error(), "not a key") {
		t.Fatalf("bad identity: %v (must not echo the secret)", err)
	}
	if _, err := AuthFromSecret("git@git.example.com:a.git", map[string][]byte{"password": []byte("p")}); err == nil || !strings.Contains(err.Error(), "identity") {
		t.Fatalf("ssh without identity: %v", err)
	}
	if _, err := AuthFromSecret("https://git.example.com/a.git", map[string][]byte{"foo": []byte("p")}); err == nil {
		t.Fatal("secret without usable keys accepted")
	}
}

// TestCheckoutsAreCollected: only the KeepCheckouts most recently used
// checkouts of a repository stay on disk, and one still in use is never
// deleted under its reader.
func TestCheckoutsAreCollected(t *testing.T) {
	ctx := t.Context()
	srv := startGitServer(t)
	if err := srv.CreateRepo(ctx, "app", "main"); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	src, err := New(Options{CacheDir: cache, LsRemoteTTL: time.Nanosecond, KeepCheckouts: 2})
	if err != nil {
		t.Fatal(err)
	}
	url := srv.RepoURL("app")
	var dirs []string
	var held func()
	for i := range 5 {
		sha, err := srv.Commit(ctx, "app", gitserver.Commit{Files: map[string]string{"cm.yaml": fmt.Sprintf("a: %d\n", i)}})
		if err != nil {
			t.Fatal(err)
		}
		rev, err := src.Resolve(ctx, url, "main", nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := src.Fetch(ctx, url, rev, nil); err != nil {
			t.Fatal(err)
		}
		dir, release, err := src.Checkout(t.Context(), url, sha)
		if err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
		if i == 0 {
			held = release // still being read
			continue
		}
		release()
	}
	exists := func(d string) bool { _, err := os.Stat(d); return err == nil }
	if !exists(dirs[0]) {
		t.Error("a checkout in use was deleted")
	}
	for i, d := range dirs[1:3] {
		if exists(d) {
			t.Errorf("old checkout %d kept", i+1)
		}
	}
	for _, d := range dirs[3:] {
		if !exists(d) {
			t.Errorf("recent checkout %s deleted", d)
		}
	}
	held()
	if exists(dirs[0]) {
		t.Error("a released old checkout was not collected")
	}
	// A checkout collected is written again when needed.
	if _, release, err := src.Checkout(t.Context(), url, filepath.Base(dirs[1])[len(hashOf(url))+1:]); err != nil {
		t.Fatal(err)
	} else {
		release()
	}
}

// startGitServer runs a smart-HTTP Git server (no auth) for the test.
func startGitServer(t testing.TB) *gitserver.Server {
	t.Helper()
	srv, err := gitserver.Start(gitserver.Options{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return srv
}

package gitsource

import (
	"context"
	"crypto/ed25519"
	"encoding/pem"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/keyless-cd/keyless/internal/gitserver"
)

const hostileToken = "team-a-token"

// tenants is one Git server holding team A's private repository (synced
// into the cache) and team B's hostile one, and the shared cache.
type tenants struct {
	srv     *gitserver.Server
	src     *Source
	cache   string
	victim  string // team A's repository URL
	hostile string // team B's repository URL
	authA   transport.AuthMethod
	shaA    string
}

func newTenants(t *testing.T) *tenants {
	t.Helper()
	ctx := t.Context()
	srv, err := gitserver.Start(gitserver.Options{Root: t.TempDir(), Token: hostileToken})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	for _, name := range []string{"team-a/app", "team-b/app"} {
		if err := srv.CreateRepo(ctx, name, "main"); err != nil {
			t.Fatal(err)
		}
	}
	shaA, err := srv.Commit(ctx, "team-a/app", gitserver.Commit{Files: map[string]string{"deploy/cm.yaml": "kind: ConfigMap\n"}})
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	src, err := New(Options{CacheDir: cache, LsRemoteTTL: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	tn := &tenants{srv: srv, src: src, cache: cache, victim: srv.RepoURL("team-a/app"), hostile: srv.RepoURL("team-b/app"),
		authA: &githttp.BasicAuth{Username: "a", Password: hostileToken}, shaA: shaA}
	if _, err := tn.sync(t, tn.victim, "main", tn.authA); err != nil {
		t.Fatal(err)
	}
	return tn
}

// sync resolves, fetches and checks out revision like the controller does.
func (tn *tenants) sync(t *testing.T, url, revision string, auth transport.AuthMethod) (string, error) {
	t.Helper()
	ctx := t.Context()
	rev, err := tn.src.Resolve(ctx, url, revision, auth)
	if err != nil {
		return "", err
	}
	if err := tn.src.Fetch(ctx, url, rev, auth); err != nil {
		return "", err
	}
	dir, release, err := tn.src.Checkout(t.Context(), url, rev.SHA)
	if err != nil {
		return "", err
	}
	release()
	return dir, nil
}

func (tn *tenants) victimConfig(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(tn.cache, "repos", hashOf(tn.victim), "config"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestHostileTreeCannotWriteOutsideItsCheckout pushes trees that try to
// write through a symlink into team A's cached bare repository (to point its
// origin at the attacker) or into a checkout of A's, and checks each is
// refused with the entry named and nothing outside B's checkout changes.
func TestHostileTreeCannotWriteOutsideItsCheckout(t *testing.T) {
	tn := newTenants(t)
	victimRepo := "../../repos/" + hashOf(tn.victim)
	victimCheckout := "../" + hashOf(tn.victim) + "-" + tn.shaA
	evilConfig := "[remote \"origin\"]\n\turl = http://attacker.example/steal\n"
	file := func(name, content string) gitserver.RawEntry { return gitserver.RawEntry{Name: name, Content: content} }
	link := func(name, target string) gitserver.RawEntry {
		return gitserver.RawEntry{Name: name, Mode: filemode.Symlink, Content: target}
	}
	dir := func(name string, entries ...gitserver.RawEntry) gitserver.RawEntry {
		return gitserver.RawEntry{Name: name, Entries: entries}
	}
	deep := file("f", "x")
	for range maxTreeDepth + 1 {
		deep = dir("d", deep)
	}
	cases := []struct {
		name    string
		entries []gitserver.RawEntry
		names   string // what the error must name
	}{
		{"symlink and folder of one name into another repository's cache",
			[]gitserver.RawEntry{link("x", victimRepo), dir("x", file("config", evilConfig))}, "x"},
		{"symlink and folder of one name into another team's checkout",
			[]gitserver.RawEntry{link("x", victimCheckout), dir("x", file("deploy", "evil"))}, "x"},
		{"duplicate file names", []gitserver.RawEntry{file("a.yaml", "1"), file("a.yaml", "2")}, "a.yaml"},
		{"a name holding a slash", []gitserver.RawEntry{file("x/../../config", evilConfig)}, "x/../../config"},
		{"dot-dot as a name", []gitserver.RawEntry{dir("..", file("config", evilConfig))}, ".."},
		{"a .git folder", []gitserver.RawEntry{dir(".git", file("config", evilConfig))}, ".git"},
		{"symlink to an absolute path", []gitserver.RawEntry{link("etc", "/etc")}, "etc"},
		{"symlink out of the checkout", []gitserver.RawEntry{dir("sub", link("up", "../../repos"))}, "sub/up"},
		{"chain of symlinks that together leave the checkout", []gitserver.RawEntry{link("d", "."), link("e", "d/..")}, "e"},
		{"symlink cycle", []gitserver.RawEntry{link("a", "b"), link("b", "a")}, "a"},
		{"tree nested too deep", []gitserver.RawEntry{deep}, "nested deeper"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sha, err := tn.srv.CommitRaw(t.Context(), "team-b/app", "main", tc.entries)
			if err != nil {
				t.Fatal(err)
			}
			before := tn.victimConfig(t)
			_, err = tn.sync(t, tn.hostile, sha, tn.authA)
			if !errors.Is(err, ErrUnsafeTree) {
				t.Fatalf("checkout of the hostile tree: err = %v, want ErrUnsafeTree", err)
			}
			if !strings.Contains(err.Error(), tc.names) {
				t.Errorf("error %q does not name %q", err, tc.names)
			}
			if after := tn.victimConfig(t); after != before || strings.Contains(after, "attacker") {
				t.Fatalf("team A's cached repository config changed:\n%s", after)
			}
			// Team A still fetches from its own server, and its checkout is intact.
			got, err := tn.sync(t, tn.victim, "main", tn.authA)
			if err != nil {
				t.Fatal(err)
			}
			entries, _ := os.ReadDir(got)
			if len(entries) != 1 || entries[0].Name() != "deploy" {
				t.Fatalf("team A's checkout holds %v, want only deploy/", entries)
			}
			leftovers, _ := filepath.Glob(filepath.Join(tn.cache, "checkouts", hashOf(tn.hostile)+"-*"))
			if len(leftovers) != 0 {
				t.Errorf("a refused checkout left %v behind", leftovers)
			}
		})
	}
}

// TestCheckoutIsReadOnlyAndRecorded checks that a finished checkout has no
// write bits and that a folder someone else put in its place is rewritten.
func TestCheckoutIsReadOnlyAndRecorded(t *testing.T) {
	tn := newTenants(t)
	dir := filepath.Join(tn.cache, "checkouts", hashOf(tn.victim)+"-"+tn.shaA)
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o222 != 0 {
			t.Errorf("%s is writable (%v)", p, fi.Mode())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// A fresh Source (a restarted controller) finds a planted folder with no
	// matching record: it must not trust it.
	if err := removeCheckout(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "deploy"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "deploy", "evil.yaml"), []byte("kind: Secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+treeSuffix, []byte(plumbing.ZeroHash.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := New(Options{CacheDir: tn.cache})
	if err != nil {
		t.Fatal(err)
	}
	got, release, err := src.Checkout(t.Context(), tn.victim, tn.shaA)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if _, err := os.Stat(filepath.Join(got, "deploy", "evil.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a planted file in the checkout folder was trusted: %v", err)
	}
	if _, err := os.Stat(filepath.Join(got, "deploy", "cm.yaml")); err != nil {
		t.Fatalf("the checkout was not rewritten: %v", err)
	}
}

// TestFetchNeverReadsTheRemoteFromTheCache rewrites a cached repository's
// origin (as a hostile tree once could) and checks that the next fetch
// still goes to the resolved URL and sends nothing to the planted one.
func TestFetchNeverReadsTheRemoteFromTheCache(t *testing.T) {
	tn := newTenants(t)
	var stolen atomic.Int64
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			stolen.Add(1)
		}
		http.Error(w, "no", http.StatusNotFound)
	}))
	t.Cleanup(attacker.Close)
	bare, err := git.PlainOpen(filepath.Join(tn.cache, "repos", hashOf(tn.victim)))
	if err != nil {
		t.Fatal(err)
	}
	if err := bare.DeleteRemote("origin"); err != nil {
		t.Fatal(err)
	}
	if _, err := bare.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{attacker.URL + "/steal.git"}}); err != nil {
		t.Fatal(err)
	}
	sha, err := tn.srv.Commit(t.Context(), "team-a/app", gitserver.Commit{Files: map[string]string{"deploy/cm.yaml": "kind: ConfigMap\nv: 2\n"}})
	if err != nil {
		t.Fatal(err)
	}
	dir, err := tn.sync(t, tn.victim, "main", tn.authA)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(dir, sha) {
		t.Fatalf("checked out %s, want %s", dir, sha)
	}
	if n := stolen.Load(); n != 0 {
		t.Fatalf("the credential was sent to the URL planted in the cache %d times", n)
	}
}

// TestCommitSHAIsNotAKey: team A syncs its private repository; team B names
// the same URL and a commit SHA A synced, without a credential (or with a
// wrong one), and must be refused with an authentication error.
func TestCommitSHAIsNotAKey(t *testing.T) {
	tn := newTenants(t)
	for name, auth := range map[string]transport.AuthMethod{
		"no credential":     nil,
		"wrong credential":  &githttp.BasicAuth{Username: "b", Password: "guess"},
		"wrong bearer auth": &githttp.TokenAuth{Token: "guess"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := tn.sync(t, tn.victim, tn.shaA, auth)
			if !errors.Is(err, transport.ErrAuthenticationRequired) && !errors.Is(err, transport.ErrAuthorizationFailed) {
				t.Fatalf("team B read team A's commit by SHA: err = %v, want an auth error", err)
			}
		})
	}
	// Team A itself may pin the SHA.
	if _, err := tn.sync(t, tn.victim, tn.shaA, tn.authA); err != nil {
		t.Fatal(err)
	}
}

// TestSHAPinFetchesThatCommitOnly pins an older commit and checks the cache
// holds it but not the branch tip nor another branch.
func TestSHAPinFetchesThatCommitOnly(t *testing.T) {
	ctx := t.Context()
	srv := startGitServer(t)
	if err := srv.CreateRepo(ctx, "app", "main"); err != nil {
		t.Fatal(err)
	}
	old, err := srv.Commit(ctx, "app", gitserver.Commit{Files: map[string]string{"a": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	tip, err := srv.Commit(ctx, "app", gitserver.Commit{Files: map[string]string{"a": "2"}})
	if err != nil {
		t.Fatal(err)
	}
	other, err := srv.Commit(ctx, "app", gitserver.Commit{Branch: "feature", Files: map[string]string{"b": "3"}})
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	src, err := New(Options{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	url := srv.RepoURL("app")
	rev, err := src.Resolve(ctx, url, old, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Fetch(ctx, url, rev, nil); err != nil {
		t.Fatal(err)
	}
	bare, err := git.PlainOpen(filepath.Join(cache, "repos", hashOf(url)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bare.CommitObject(plumbing.NewHash(old)); err != nil {
		t.Fatalf("the pinned commit is not cached: %v", err)
	}
	for _, h := range []string{tip, other} {
		if _, err := bare.CommitObject(plumbing.NewHash(h)); err == nil {
			t.Errorf("commit %s was fetched too; a pin fetches its commit only", h)
		}
	}
}

// tarpit listens on loopback, accepts every connection and never sends a
// byte; it returns the address.
func tarpit(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() })
		}
	}()
	return l.Addr().String()
}

// TestGitServerThatNeverAnswers holds every connection open without a byte
// of answer: ls-remote must give up at the deadline with an error that
// names it, not hold the worker.
func TestGitServerThatNeverAnswers(t *testing.T) {
	addr := tarpit(t)
	src, err := New(Options{CacheDir: t.TempDir(), Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := src.Resolve(t.Context(), "http://"+addr+"/tarpit.git", "main", nil)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "--git-timeout") {
			t.Fatalf("err = %v, want a deadline error naming --git-timeout", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("ls-remote against a server that never answers did not return")
	}
}

// TestGitResponsesAreCapped checks the caps on refs advertised, on the
// advertisement's bytes and on a fetch's bytes.
func TestGitResponsesAreCapped(t *testing.T) {
	ctx := t.Context()
	srv := startGitServer(t)
	if err := srv.CreateRepo(ctx, "app", "main"); err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(1, 2)) //nolint:gosec // test data, not a secret
	var b strings.Builder
	for range 8 << 10 {
		fmt.Fprintf(&b, "%08x", rnd.Uint32())
	}
	big := b.String()
	if _, err := srv.Commit(ctx, "app", gitserver.Commit{Files: map[string]string{"a": big}}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Commit(ctx, "app", gitserver.Commit{Branch: "b2", Files: map[string]string{"b": "2"}}); err != nil {
		t.Fatal(err)
	}
	url := srv.RepoURL("app")
	for name, tc := range map[string]struct {
		opts Options
		want error
	}{
		"refs":          {Options{MaxRefs: 2}, ErrTooManyRefs},
		"advertisement": {Options{MaxAdvertisementBytes: 64}, ErrResponseTooLarge},
		"pack":          {Options{MaxFetchBytes: 1024}, ErrResponseTooLarge},
	} {
		t.Run(name, func(t *testing.T) {
			tc.opts.CacheDir = t.TempDir()
			src, err := New(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			rev, err := src.Resolve(ctx, url, "main", nil)
			if err == nil {
				err = src.Fetch(ctx, url, rev, nil)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestCredentialsInTheURLNeverReachMessages: a token embedded in repoURL
// is not in any error Resolve or Fetch returns.
func TestCredentialsInTheURLNeverReachMessages(t *testing.T) {
	srv := startGitServer(t)
	src, err := New(Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, url := range []string{
		strings.Replace(srv.RepoURL("missing"), "http://", "http://oauth2:glpat-s3cret@", 1),
		strings.Replace(srv.RepoURL("missing"), "http://", "http://glpat-s3cret@", 1),
	} {
		_, err := src.Resolve(t.Context(), url, "main", nil)
		if err == nil {
			t.Fatal("resolving a missing repository succeeded")
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("the error shows the token: %v", err)
		}
		if !errors.Is(err, transport.ErrRepositoryNotFound) {
			t.Errorf("err = %v: redaction lost the error's type", err)
		}
		if got := Redact(url); strings.Contains(got, "s3cret") || !strings.Contains(got, "***@127.0.0.1") {
			t.Errorf("Redact(%s) = %s", url, got)
		}
	}
	if got := Redact("ssh://git@gitlab.example.com/org/repo.git"); got != "ssh://git@gitlab.example.com/org/repo.git" {
		t.Errorf("an ssh user name was redacted: %s", got)
	}
}

// TestKnownHostsNeedNoTempFile: known_hosts from the Git secret is checked
// without writing anything to disk (the controller's root is read-only).
func TestKnownHostsNeedNoTempFile(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	newKey := func() ssh.PublicKey {
		_, priv, err := ed25519.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		signer, err := ssh.NewSignerFromKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		return signer.PublicKey()
	}
	good, other := newKey(), newKey()
	line := knownhosts.Line([]string{"git.example.com"}, good)
	cb, err := knownHostsCallback([]byte(line + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	addr := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 22}
	if err := cb("git.example.com:22", addr, good); err != nil {
		t.Fatalf("the known host key was refused: %v", err)
	}
	if err := cb("git.example.com:22", addr, other); err == nil {
		t.Fatal("an unknown host key was accepted")
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Fatalf("files were written to TMPDIR: %v", entries)
	}
}

// TestSSHServerThatNeverAnswers: an SSH server that accepts and never sends
// its banner holds the caller no longer than the deadline, and a second
// attempt while the first still hangs fails at once.
func TestSSHServerThatNeverAnswers(t *testing.T) {
	addr := tarpit(t)
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	auth, err := gitssh.NewPublicKeys("git", pem.EncodeToMemory(block), "")
	if err != nil {
		t.Fatal(err)
	}
	auth.HostKeyCallback = ssh.InsecureIgnoreHostKey() //nolint:gosec // the tarpit never gets this far
	src, err := New(Options{CacheDir: t.TempDir(), Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	url := "ssh://git@" + addr + "/tarpit.git"
	done := make(chan error, 1)
	go func() {
		_, err := src.Resolve(t.Context(), url, "main", auth)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want a deadline error", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("ls-remote against an SSH server that never answers did not return")
	}
	if _, err := src.Resolve(t.Context(), url, "main", auth); !errors.Is(err, ErrSSHHanging) {
		t.Fatalf("second attempt: err = %v, want ErrSSHHanging", err)
	}
}

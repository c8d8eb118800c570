package gitsource

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"

	"github.com/keyless-cd/keyless/internal/gitserver"
)

func deployKey(t *testing.T) ([]byte, ssh.Signer) {
	t.Helper()
	key, signer, err := gitserver.NewDeployKey()
	if err != nil {
		t.Fatal(err)
	}
	return key, signer
}

// sshRepo serves one repository with a signed commit over HTTP (to make
// commits) and over a real OpenSSH sshd that lets deploy in.
func sshRepo(t *testing.T, deploy ssh.PublicKey) (*gitserver.SSHServer, *gitserver.Server, string, ssh.Signer) {
	t.Helper()
	ctx := t.Context()
	srv, err := gitserver.Start(gitserver.Options{Root: t.TempDir(), Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	if err := srv.CreateRepo(ctx, "org/app", "main"); err != nil {
		t.Fatal(err)
	}
	_, ciKey := deployKey(t)
	sha, err := srv.Commit(ctx, "org/app", gitserver.Commit{Files: map[string]string{"deploy/cm.yaml": "a: 1\n"}, Message: "over ssh",
		Author: &object.Signature{Name: "Alice", Email: "alice@example.com", When: time.Now()}, Signer: SSHSigner{Signer: ciKey}})
	if err != nil {
		t.Fatal(err)
	}
	sshd, err := gitserver.StartSSH(ctx, gitserver.SSHOptions{Root: srv.Root(), AuthorizedKeys: []ssh.PublicKey{deploy}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sshd.Stop)
	return sshd, srv, sha, ciKey
}

// TestSSHDeployKey: ls-remote, fetch, checkout and signature checks over a
// real sshd with the Application Secret's deploy key, as the user the URL
// names (not "git": the Secret has no username); unknown, changed host keys
// and a wrong key are refused, saying which.
func TestSSHDeployKey(t *testing.T) {
	ctx := t.Context()
	identity, deploy := deployKey(t)
	sshd, srv, sha, ciKey := sshRepo(t, deploy.PublicKey())
	url := sshd.RepoURL("org/app")
	src, err := New(Options{CacheDir: t.TempDir(), LsRemoteTTL: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	secret := map[string][]byte{KeyIdentity: identity, KeyKnownHosts: sshd.KnownHosts()}
	auth, err := AuthFromSecret(url, secret)
	if err != nil {
		t.Fatal(err)
	}
	rev, err := src.Resolve(ctx, url, "main", auth)
	if err != nil || rev.SHA != sha {
		t.Fatalf("ls-remote over ssh: %+v, %v\nsshd log:\n%s", rev, err, sshd.Log())
	}
	if err := src.Fetch(ctx, url, rev, auth); err != nil {
		t.Fatalf("fetch over ssh: %v", err)
	}
	dir, release, err := src.Checkout(ctx, url, sha)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "deploy", "cm.yaml"))
	release()
	if err != nil || string(b) != "a: 1\n" {
		t.Fatalf("checkout: %q, %v", b, err)
	}
	info, err := src.CommitInfo(url, sha)
	if err != nil {
		t.Fatal(err)
	}
	trusted, err := ParseTrustedKeys(map[string][]byte{"ci.pub": ssh.MarshalAuthorizedKey(ciKey.PublicKey())})
	if err != nil {
		t.Fatal(err)
	}
	if signer, err := info.Verify(trusted); err != nil || signer == "" {
		t.Fatalf("verify a commit fetched over ssh: %q, %v", signer, err)
	}

	// The next commit comes over ssh as its change (incremental.go).
	next, err := srv.Commit(ctx, "org/app", gitserver.Commit{Files: map[string]string{"deploy/cm.yaml": "a: 2\n"}, Message: "next"})
	if err != nil {
		t.Fatal(err)
	}
	rev, err = src.Resolve(ctx, url, "main", auth)
	if err != nil || rev.SHA != next {
		t.Fatalf("ls-remote over ssh: %+v, %v", rev, err)
	}
	if err := src.Fetch(ctx, url, rev, auth); err != nil {
		t.Fatalf("fetch over ssh: %v", err)
	}
	if n := src.changeFetches.Load(); n != 1 {
		t.Errorf("the next commit took %d incremental fetches over ssh, want 1", n)
	}
	dir, release, err = src.Checkout(ctx, url, next)
	if err != nil {
		t.Fatal(err)
	}
	b, err = os.ReadFile(filepath.Join(dir, "deploy", "cm.yaml"))
	release()
	if err != nil || string(b) != "a: 2\n" {
		t.Fatalf("checkout of the next commit: %q, %v", b, err)
	}

	host := sshd.Addr()
	fingerprint := ssh.FingerprintSHA256(sshd.HostKey())
	_, other := deployKey(t)
	for name, tc := range map[string]struct {
		knownHosts []byte
		identity   []byte
		err        error
		says       []string
	}{
		"unknown host key": {knownHosts: []byte("[git.example.com]:22 " + string(ssh.MarshalAuthorizedKey(other.PublicKey()))), identity: identity,
			err: ErrHostKey, says: []string{host, fingerprint, "not in known_hosts"}},
		"changed host key": {knownHosts: []byte(host + " " + string(ssh.MarshalAuthorizedKey(other.PublicKey()))), identity: identity,
			err: ErrHostKey, says: []string{host, fingerprint, "changed"}},
		"wrong deploy key": {knownHosts: sshd.KnownHosts(), identity: func() []byte { k, _ := deployKey(t); return k }(),
			says: []string{"unable to authenticate"}},
	} {
		auth, err := AuthFromSecret(url, map[string][]byte{KeyIdentity: tc.identity, KeyKnownHosts: tc.knownHosts})
		if err != nil {
			t.Fatal(err)
		}
		_, err = src.Resolve(ctx, url, "main", auth)
		if err == nil || (tc.err != nil && !errors.Is(err, tc.err)) {
			t.Errorf("%s: err = %v, want %v", name, err, tc.err)
			continue
		}
		for _, s := range tc.says {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: %q does not say %q", name, err, s)
			}
		}
		if strings.Contains(err.Error(), "PRIVATE KEY") {
			t.Errorf("%s: the key is in the error", name)
		}
	}
}

func TestURLUser(t *testing.T) {
	for url, want := range map[string]string{
		"ssh://deploy@git.example.com/org/repo.git":      "deploy",
		"ssh://deploy@git.example.com:2222/org/repo.git": "deploy",
		"ssh://git.example.com/org/repo.git":             "",
		"deploy@git.example.com:org/repo.git":            "deploy",
		"git@github.com:org/repo.git":                    "git",
		"https://user:tok@git.example.com/org/repo.git":  "",
		"git.example.com:org/repo.git":                   "",
	} {
		if got := URLUser(url); got != want {
			t.Errorf("URLUser(%q) = %q, want %q", url, got, want)
		}
	}
	identity, _ := deployKey(t)
	kh := []byte("git.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n")
	for url, want := range map[string]string{"deploy@git.example.com:org/repo.git": "deploy", "ssh://git.example.com/org/repo.git": "from-secret"} {
		auth, err := AuthFromSecret(url, map[string][]byte{KeyIdentity: identity, KeyKnownHosts: kh, KeyUsername: []byte("from-secret")})
		if err != nil {
			t.Fatal(err)
		}
		if got := auth.(*gitssh.PublicKeys).User; got != want {
			t.Errorf("%s: SSH user %q, want %q (the URL's, else the Secret's)", url, got, want)
		}
		if got := ForURL(auth, "ssh://other@h/r").(*gitssh.PublicKeys).User; got != "other" {
			t.Errorf("ForURL: user %q, want other", got)
		}
	}
}

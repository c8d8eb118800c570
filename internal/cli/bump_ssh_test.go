package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"

	"github.com/keyless-cd/keyless/internal/gitserver"
)

// TestBumpPushesOverSSH: keyless bump --push with a deploy key against a
// real sshd, from --repo and from a checkout whose origin is the SSH URL;
// a known_hosts without the server's key is refused and nothing is pushed.
func TestBumpPushesOverSSH(t *testing.T) {
	ctx := t.Context()
	srv, err := gitserver.Start(gitserver.Options{Root: t.TempDir(), Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	if err := srv.CreateRepo(ctx, "org/app", "main"); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Commit(ctx, "org/app", gitserver.Commit{Files: map[string]string{"values.yaml": "image:\n  tag: v1\n"}}); err != nil {
		t.Fatal(err)
	}
	key, signer, err := gitserver.NewDeployKey()
	if err != nil {
		t.Fatal(err)
	}
	sshd, err := gitserver.StartSSH(ctx, gitserver.SSHOptions{Root: srv.Root(), AuthorizedKeys: []ssh.PublicKey{signer.PublicKey()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sshd.Stop)
	files := t.TempDir()
	keyFile, khFile, badKH := filepath.Join(files, "deploy_key"), filepath.Join(files, "known_hosts"), filepath.Join(files, "other_hosts")
	for f, b := range map[string][]byte{keyFile: key, khFile: sshd.KnownHosts(), badKH: []byte("[git.example.com]:22 " + string(ssh.MarshalAuthorizedKey(signer.PublicKey())))} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("GITLAB_CI", "")
	t.Setenv("GITHUB_ACTIONS", "")
	url := sshd.RepoURL("org/app")
	tag := func() string {
		t.Helper()
		dir := t.TempDir()
		if _, err := git.PlainClone(dir, false, &git.CloneOptions{URL: srv.RepoURL("org/app"), Auth: &githttp.BasicAuth{Username: "x", Password: "tok"}}); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(filepath.Join(dir, "values.yaml"))
		return strings.TrimSpace(strings.TrimPrefix(string(b), "image:\n  tag:"))
	}
	sha := regexp.MustCompile(`^[0-9a-f]{40}\n$`)

	code, out, errOut := run(ctx, t, "bump", "--repo", url, "--file", "values.yaml", "--set", "image.tag=v2", "--push",
		"--ssh-key", keyFile, "--known-hosts", khFile, "--committer", "CI <ci@example.com>")
	if code != 0 || !sha.MatchString(out) || tag() != "v2" {
		t.Fatalf("bump --repo over ssh: exit %d, stdout %q, stderr %q, tag %s\nsshd log:\n%s", code, out, errOut, tag(), sshd.Log())
	}

	t.Log("a checkout whose origin is the SSH URL (the user is the URL's)")
	auth, err := gitssh.NewPublicKeys(sshd.User(), key, "")
	if err != nil {
		t.Fatal(err)
	}
	auth.HostKeyCallback = ssh.FixedHostKey(sshd.HostKey())
	dir := t.TempDir()
	if _, err := git.PlainCloneContext(ctx, dir, false, &git.CloneOptions{URL: url, Auth: auth}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = run(ctx, t, "bump", "--dir", dir, "--file", "values.yaml", "--set", "image.tag=v3", "--push",
		"--ssh-key", keyFile, "--known-hosts", khFile, "--committer", "CI <ci@example.com>")
	if code != 0 || !sha.MatchString(out) || tag() != "v3" {
		t.Fatalf("bump --dir over ssh: exit %d, stdout %q, stderr %q, tag %s", code, out, errOut, tag())
	}

	t.Log("an unknown host key is refused, naming its fingerprint")
	code, _, errOut = run(ctx, t, "bump", "--repo", url, "--file", "values.yaml", "--set", "image.tag=v4", "--push",
		"--ssh-key", keyFile, "--known-hosts", badKH, "--committer", "CI <ci@example.com>")
	if code == 0 || !strings.Contains(errOut, ssh.FingerprintSHA256(sshd.HostKey())) || tag() != "v3" {
		t.Fatalf("unknown host: exit %d, stderr %q, tag %s", code, errOut, tag())
	}
}

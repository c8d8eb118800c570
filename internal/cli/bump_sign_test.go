package cli

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"golang.org/x/crypto/ssh"

	"github.com/keyless-cd/keyless/internal/gitserver"
	"github.com/keyless-cd/keyless/internal/gitsource"
)

// TestBumpSignsCommitsTheControllerAccepts: --sign-ssh-key produces a commit
// that the controller's verify mode accepts for that key.
func TestBumpSignsCommitsTheControllerAccepts(t *testing.T) {
	srv, err := gitserver.Start(gitserver.Options{Root: t.TempDir(), Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	if err := srv.CreateRepo(t.Context(), "app", "main"); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Commit(t.Context(), "app", gitserver.Commit{Files: map[string]string{"v.yaml": "tag: a\n"}}); err != nil {
		t.Fatal(err)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "signing_key")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEST_TOKEN", "tok")
	code, out, errOut := run(t.Context(), t, "bump", "--repo", srv.RepoURL("app"), "--file", "v.yaml", "--set", "tag=b",
		"--push", "--token-env", "TEST_TOKEN", "--sign-ssh-key", keyFile)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	sha := strings.TrimSpace(out)

	src, err := gitsource.New(gitsource.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	auth := &githttp.BasicAuth{Username: "x", Password: "tok"}
	rev, err := src.Resolve(t.Context(), srv.RepoURL("app"), "main", auth)
	if err != nil || rev.SHA != sha {
		t.Fatalf("resolve: %+v %v, want %s", rev, err, sha)
	}
	if err := src.Fetch(t.Context(), srv.RepoURL("app"), rev, auth); err != nil {
		t.Fatal(err)
	}
	commit, err := src.CommitInfo(srv.RepoURL("app"), sha)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := gitsource.ParseTrustedKeys(map[string][]byte{"ci.pub": ssh.MarshalAuthorizedKey(sshPub)})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := commit.Verify(keys)
	if err != nil {
		t.Fatalf("the controller would refuse the bump's commit: %v", err)
	}
	if signer != ssh.FingerprintSHA256(sshPub) {
		t.Fatalf("signer %s", signer)
	}
}

package artifactsign_test

import (
	"crypto"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/keyless-cd/keyless/internal/artifactsign"
	"github.com/keyless-cd/keyless/internal/oidc"
	"github.com/keyless-cd/keyless/internal/registrytest"
	"github.com/keyless-cd/keyless/internal/sigstoretest"
)

// cosign runs the real cosign CLI (built by make sigstore) with a home of
// its own holding the registry login.
type cosign struct {
	bin, home string
	reg       registrytest.Registry
}

func newCosign(t *testing.T, reg registrytest.Registry) *cosign {
	t.Helper()
	home := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("ci:s3cret"))
	if err := os.MkdirAll(filepath.Join(home, ".docker"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".docker", "config.json"), []byte(`{"auths":{"`+reg.Host+`":{"auth":"`+auth+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return &cosign{bin: sigstoretest.Bin(t, "cosign"), home: home, reg: reg}
}

func (c *cosign) run(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), c.bin, args...) //nolint:gosec // the test's own cosign
	cmd.Env = []string{"HOME=" + c.home, "TUF_ROOT=" + filepath.Join(c.home, "tuf"), "COSIGN_PASSWORD=pw", "PATH=" + os.Getenv("PATH")}
	cmd.Dir = c.home
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cosign %v: %v\n%s", args, err, out)
	}
}

func (c *cosign) ref(d ocispec.Descriptor) string {
	return c.reg.Host + "/myorg/myapp@" + d.Digest.String()
}

// TestCosignInterop: what keyless signs, the real cosign verifies, and what
// cosign signs, keyless verifies: keylessly (a real Fulcio and timestamp
// authority, the CI job's token) and with cosign's own encrypted key pair.
func TestCosignInterop(t *testing.T) {
	tr := newTrust(t)
	stack, ids := tr.sigstore(t)
	reg, repo := registry(t, "myorg/myapp")
	cs := newCosign(t, reg)
	keyless := artifactsign.Policy{TrustedRoot: stack.TrustedRoot, Identities: ids, SkipTransparencyLog: true}
	token := filepath.Join(cs.home, "token")

	t.Run("keyless signs keylessly, cosign verifies", func(t *testing.T) {
		art := artifact(t, repo, "a", "a")
		if _, err := artifactsign.Sign(t.Context(), repo, art, artifactsign.SignOptions{
			IDToken: tr.token(t, protectedMain, oidc.SigstoreAudience), FulcioURL: stack.FulcioURL, TimestampURLs: []string{stack.TimestampURL},
		}); err != nil {
			t.Fatal(err)
		}
		cs.run(t, "verify", "--trusted-root", stack.TrustedRootPath,
			"--certificate-identity-regexp", "^"+regexp.QuoteMeta(tr.issuer.URL()+"/myorg/myapp//"), "--certificate-oidc-issuer", tr.issuer.URL(),
			"--insecure-ignore-tlog", "--insecure-ignore-sct", "--use-signed-timestamps",
			"--allow-http-registry", cs.ref(art))
	})
	t.Run("cosign signs keylessly, keyless verifies", func(t *testing.T) {
		art := artifact(t, repo, "b", "b")
		if err := os.WriteFile(token, []byte(tr.token(t, protectedMain, oidc.SigstoreAudience)), 0o600); err != nil {
			t.Fatal(err)
		}
		cs.run(t, "sign", "--yes", "--signing-config", stack.SigningConfigPath, "--trusted-root", stack.TrustedRootPath,
			"--identity-token", token, "--allow-http-registry", cs.ref(art))
		v, err := artifactsign.Verify(t.Context(), client(t, reg, "myorg/myapp"), art, keyless)
		if err != nil {
			t.Fatal(err)
		}
		if v.Ref != "refs/heads/main" {
			t.Errorf("verified %+v", v)
		}
	})
	t.Run("cosign's key pair both ways", func(t *testing.T) {
		cs.run(t, "generate-key-pair", "--output-key-prefix", filepath.Join(cs.home, "ck"))
		privPEM, err := os.ReadFile(filepath.Join(cs.home, "ck.key"))
		if err != nil {
			t.Fatal(err)
		}
		pubPEM, err := os.ReadFile(filepath.Join(cs.home, "ck.pub"))
		if err != nil {
			t.Fatal(err)
		}
		priv, err := artifactsign.LoadPrivateKey(privPEM, []byte("pw"))
		if err != nil {
			t.Fatal(err)
		}
		pub, err := artifactsign.LoadPublicKey(pubPEM)
		if err != nil {
			t.Fatal(err)
		}
		byCosign := artifact(t, repo, "c", "c")
		cs.run(t, "sign", "--yes", "--key", filepath.Join(cs.home, "ck.key"), "--use-signing-config=false", "--tlog-upload=false", "--allow-http-registry", cs.ref(byCosign))
		if _, err := artifactsign.Verify(t.Context(), client(t, reg, "myorg/myapp"), byCosign, artifactsign.Policy{Keys: []crypto.PublicKey{pub}, SkipTransparencyLog: true}); err != nil {
			t.Fatalf("keyless verifying cosign's key signature: %v", err)
		}
		byKeyless := artifact(t, repo, "d", "d")
		if _, err := artifactsign.Sign(t.Context(), repo, byKeyless, artifactsign.SignOptions{Key: priv}); err != nil {
			t.Fatal(err)
		}
		cs.run(t, "verify", "--key", filepath.Join(cs.home, "ck.pub"), "--insecure-ignore-tlog", "--allow-http-registry", cs.ref(byKeyless))
	})
}

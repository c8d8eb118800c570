package artifactsign_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/keyless-cd/keyless/internal/artifactsign"
	"github.com/keyless-cd/keyless/internal/ociartifact"
	"github.com/keyless-cd/keyless/internal/registrytest"
)

// registry runs the real registry (with a login) and returns a client of
// repository path on it.
func registry(t *testing.T, path string) (registrytest.Registry, *remote.Repository) {
	t.Helper()
	reg := registrytest.StartWith(t, registrytest.Binary(t), registrytest.Options{Username: "ci", Password: "s3cret"})
	return reg, client(t, reg, path)
}

// client is a fresh oras-go client (a fresh one sees referrers another
// pushed: oras-go remembers whether the registry has the referrers API).
func client(t *testing.T, reg registrytest.Registry, path string) *remote.Repository {
	t.Helper()
	r, err := remote.NewRepository(reg.Host + "/" + path)
	if err != nil {
		t.Fatal(err)
	}
	r.PlainHTTP = true
	r.SkipReferrersGC = true // the registry refuses deletes
	r.Client = &auth.Client{Cache: auth.NewCache(), Credential: auth.StaticCredential(reg.Host, auth.Credential{Username: "ci", Password: "s3cret"})}
	return r
}

// artifact publishes a small artifact with content body under tag.
func artifact(t *testing.T, repo *remote.Repository, tag, body string) ocispec.Descriptor {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cm.yaml"), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := ociartifact.Pack(dir, &b); err != nil {
		t.Fatal(err)
	}
	d, err := ociartifact.Push(t.Context(), repo, tag, b.Bytes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestKeySignatures: a key-signed artifact verifies with that key and not
// with another; an unsigned one and one whose signature is over another
// artifact are refused; a transparency-log proof is required unless the
// policy skips it.
func TestKeySignatures(t *testing.T) {
	reg, repo := registry(t, "team/app")
	signed := artifact(t, repo, "v1", "a: 1\n")
	unsigned := artifact(t, repo, "v2", "a: 2\n")
	key, other := newKey(t), newKey(t)
	s, err := artifactsign.Sign(t.Context(), repo, signed, artifactsign.SignOptions{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	if s.KeyID != artifactsign.KeyID(key.Public()) {
		t.Errorf("signed by %q, want key %q", s.KeyID, artifactsign.KeyID(key.Public()))
	}
	policy := artifactsign.Policy{Keys: []crypto.PublicKey{key.Public()}, SkipTransparencyLog: true}
	v, err := artifactsign.Verify(t.Context(), client(t, reg, "team/app"), signed, policy)
	if err != nil {
		t.Fatal(err)
	}
	if v.KeyID != artifactsign.KeyID(key.Public()) || v.Referrer != s.Referrer {
		t.Errorf("verified %+v, want the key's signature %s", v, s.Referrer)
	}

	_, err = artifactsign.Verify(t.Context(), client(t, reg, "team/app"), signed, artifactsign.Policy{Keys: []crypto.PublicKey{other.Public()}, SkipTransparencyLog: true})
	var verr *artifactsign.VerifyError
	if !errors.As(err, &verr) || !strings.Contains(err.Error(), "not trusted") || !strings.Contains(err.Error(), signed.Digest.String()) {
		t.Errorf("another key: %v, want a VerifyError naming the digest", err)
	}
	if _, err := artifactsign.Verify(t.Context(), client(t, reg, "team/app"), unsigned, policy); !errors.Is(err, artifactsign.ErrUnsigned) {
		t.Errorf("unsigned: %v, want ErrUnsigned", err)
	}
	if _, err := artifactsign.Verify(t.Context(), client(t, reg, "team/app"), signed, artifactsign.Policy{Keys: policy.Keys}); !errors.As(err, &verr) {
		t.Errorf("no transparency-log entry, log required: %v, want refused", err)
	}

	// A signature of v1 copied onto v2's referrers does not sign v2: the
	// statement names v1's digest.
	moved := ocispec.Descriptor{MediaType: unsigned.MediaType, Digest: unsigned.Digest, Size: unsigned.Size}
	if _, err := artifactsign.Sign(t.Context(), repo, signed, artifactsign.SignOptions{Key: key}); err != nil {
		t.Fatal(err)
	}
	copySignatures(t, reg, signed, moved)
	if _, err := artifactsign.Verify(t.Context(), client(t, reg, "team/app"), moved, policy); !errors.As(err, &verr) {
		t.Errorf("a signature of another artifact: %v, want refused", err)
	}
}

// copySignatures pushes the signature bundles of from again as referrers
// of to (a registry-side attacker replaying a signature).
func copySignatures(t *testing.T, reg registrytest.Registry, from, to ocispec.Descriptor) {
	t.Helper()
	repo := client(t, reg, "team/app")
	n := 0
	err := repo.Referrers(t.Context(), from, "", func(refs []ocispec.Descriptor) error {
		for _, r := range refs {
			raw, err := fetchAll(t, repo, r)
			if err != nil {
				return err
			}
			replaced := bytes.ReplaceAll(raw, []byte(from.Digest.String()), []byte(to.Digest.String()))
			d := ocispec.Descriptor{MediaType: r.MediaType, Digest: digestOf(replaced), Size: int64(len(replaced))}
			if err := repo.Push(t.Context(), d, bytes.NewReader(replaced)); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil || n == 0 {
		t.Fatalf("copying %d signatures: %v", n, err)
	}
}

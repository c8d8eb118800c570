package ociartifact

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/keyless-cd/keyless/internal/registrytest"
)

// testRegistry runs the real Distribution registry with htpasswd
// authentication.
func testRegistry(t *testing.T) registrytest.Registry {
	t.Helper()
	return registrytest.StartWith(t, registrytest.Binary(t), registrytest.Options{Username: "ci", Password: "s3cret"})
}

// repoAt is an oras-go client of path on reg with the given password
// ("" for none).
func repoAt(t *testing.T, reg registrytest.Registry, path, password string) *remote.Repository {
	t.Helper()
	r, err := remote.NewRepository(reg.Host + "/" + path)
	if err != nil {
		t.Fatal(err)
	}
	r.PlainHTTP = true
	r.Client = &auth.Client{Cache: auth.NewCache(), Credential: auth.StaticCredential(reg.Host, auth.Credential{Username: "ci", Password: password})}
	return r
}

// packed is testdata/app packed.
func packed(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Pack(filepath.Join("testdata", "app"), &b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestPublishResolveFetch(t *testing.T) {
	reg := testRegistry(t)
	repo := repoAt(t, reg, "team/app", "s3cret")
	layer := packed(t)
	ann := map[string]string{AnnotationSource: "https://git.example/team/app", AnnotationRevision: "main@sha1:0123456789abcdef0123456789abcdef01234567"}
	d1, err := Push(t.Context(), repo, "v1.0.0", layer, ann)
	if err != nil {
		t.Fatal(err)
	}
	// A second version with other content.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cm.yaml"), []byte("kind: ConfigMap\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := Pack(dir, &b); err != nil {
		t.Fatal(err)
	}
	d2, err := Push(t.Context(), repo, "v1.1.0", b.Bytes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Push(t.Context(), repo, "v2.0.0", b.Bytes(), nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ target, tag, digest string }{
		{"v1.0.0", "v1.0.0", d1.Digest.String()},
		{"1.x", "v1.1.0", d2.Digest.String()},
		{">=1.0.0 <1.1.0", "v1.0.0", d1.Digest.String()},
		{d1.Digest.String(), "", d1.Digest.String()},
	} {
		res, err := Resolve(t.Context(), repo, c.target, Limits{})
		if err != nil {
			t.Fatalf("%s: %v", c.target, err)
		}
		if res.Tag != c.tag || res.Digest != c.digest {
			t.Errorf("%s: resolved %s, want %s@%s", c.target, res.Revision(), c.tag, c.digest)
		}
	}
	res, err := Resolve(t.Context(), repo, "v1.0.0", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Annotations[AnnotationRevision] != ann[AnnotationRevision] {
		t.Errorf("annotations %v, want %v", res.Annotations, ann)
	}
	if _, err := Resolve(t.Context(), repo, "3.x", Limits{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("a range no tag is in: %v, want ErrNotFound", err)
	}
	if _, err := Resolve(t.Context(), repoAt(t, reg, "team/app", "wrong"), "v1.0.0", Limits{}); err == nil {
		t.Error("a wrong password resolved")
	}

	cache := t.TempDir()
	got, err := Fetch(t.Context(), repo, d1.Digest.String(), cache, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	cm, err := os.ReadFile(filepath.Join(got, "cm-link.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(filepath.Join("testdata", "app", "base", "configmap.yaml"))
	if !bytes.Equal(cm, want) {
		t.Errorf("unpacked through the symlink: %q, want %q", cm, want)
	}
	if info, err := os.Stat(filepath.Join(got, "base", "configmap.yaml")); err != nil || info.Mode().Perm() != 0o400 {
		t.Errorf("unpacked file: %v %v, want read-only", info.Mode(), err)
	}
	if info, err := os.Stat(filepath.Join(got, "base")); err != nil || info.Mode().Perm() != 0o555 {
		t.Errorf("unpacked folder: %v %v, want read-only", info.Mode(), err)
	}
	// Cached by digest: a second fetch does not ask the registry.
	again, err := Fetch(t.Context(), repoAt(t, reg, "team/app", "wrong"), d1.Digest.String(), cache, Limits{})
	if err != nil || again != got {
		t.Errorf("second fetch: %s %v, want the cached %s", again, err, got)
	}
}

func TestTamperedArtifactIsRefused(t *testing.T) {
	reg := testRegistry(t)
	repo := repoAt(t, reg, "team/app", "s3cret")
	layer := packed(t)
	desc, err := Push(t.Context(), repo, "v1", layer, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := Manifest(layer, nil)
	if err != nil {
		t.Fatal(err)
	}
	layerDigest := m.Layers[0].Digest.String()

	// The layer's bytes changed in the registry's storage.
	p := reg.BlobPath(layerDigest)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	_, err = Fetch(t.Context(), repo, desc.Digest.String(), cache, Limits{})
	var de *DigestError
	if !errors.As(err, &de) || de.Want != layerDigest {
		t.Fatalf("a tampered layer: %v, want a DigestError naming %s", err, layerDigest)
	}
	if entries, _ := os.ReadDir(cache); len(entries) != 0 {
		t.Errorf("a refused artifact left %d entries in the cache", len(entries))
	}

	// The manifest's bytes changed.
	mp := reg.BlobPath(desc.Digest.String())
	raw, err := os.ReadFile(mp)
	if err != nil {
		t.Fatal(err)
	}
	raw = bytes.Replace(raw, []byte(`"schemaVersion":2`), []byte(`"schemaVersion":2 `), 1)
	if err := os.WriteFile(mp, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Fetch(t.Context(), repo, desc.Digest.String(), cache, Limits{})
	if !errors.As(err, &de) || de.Want != desc.Digest.String() {
		t.Fatalf("a tampered manifest: %v, want a DigestError naming %s", err, desc.Digest)
	}
	if !strings.Contains(err.Error(), desc.Digest.String()) {
		t.Errorf("the error does not name the digest: %v", err)
	}
}

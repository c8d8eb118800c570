package helmrepo

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"oras.land/oras-go/v2/registry/remote"

	"github.com/keyless-cd/keyless/internal/ociartifact"
)

// TestArtifactThroughTheRegistryClient: an OCI artifact pushed, resolved
// and fetched through the client the controller uses (Registry), against
// the real registry over TLS with token authentication; anonymous, and
// with a credential bound to another host, it is refused.
func TestArtifactThroughTheRegistryClient(t *testing.T) {
	reg := startRegistry(t, false)
	f := newTestFetcher(t, Options{}, reg.trust()...)
	creds := registryCreds(reg)
	url := "oci://" + reg.host + "/team/app"
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "cm.yaml"), []byte("kind: ConfigMap\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var layer bytes.Buffer
	if err := ociartifact.Pack(src, &layer); err != nil {
		t.Fatal(err)
	}
	var pushed string
	err := f.Registry(t.Context(), url, creds, func(ctx context.Context, r *remote.Repository) error {
		d, err := ociartifact.Push(ctx, r, "v1", layer.Bytes(), nil)
		pushed = d.Digest.String()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var dir string
	err = f.Registry(t.Context(), url, creds, func(ctx context.Context, r *remote.Repository) error {
		res, err := ociartifact.Resolve(ctx, r, "v1", ociartifact.Limits{})
		if err != nil {
			return err
		}
		if res.Digest != pushed {
			t.Errorf("resolved %s, pushed %s", res.Digest, pushed)
		}
		dir, err = ociartifact.Fetch(ctx, r, res.Digest, t.TempDir(), ociartifact.Limits{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "cm.yaml")); err != nil || string(b) != "kind: ConfigMap\n" {
		t.Errorf("unpacked: %q %v", b, err)
	}
	resolve := func(c *Credentials) error {
		return f.Registry(t.Context(), url, c, func(ctx context.Context, r *remote.Repository) error {
			_, err := ociartifact.Resolve(ctx, r, "v1", ociartifact.Limits{})
			return err
		})
	}
	if err := resolve(nil); err == nil {
		t.Error("an anonymous resolve succeeded against token auth")
	}
	if err := resolve(registryCreds(reg, "registry.example.com")); err == nil {
		t.Error("a credential bound to another host was sent")
	}
	if err := f.Registry(t.Context(), "https://"+reg.host+"/team/app", creds, func(context.Context, *remote.Repository) error { return nil }); err == nil {
		t.Error("Registry took an https:// URL")
	}
}

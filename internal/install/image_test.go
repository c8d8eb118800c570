package install

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const testDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// TestControllerImage: --image wins (a warning when it names no digest); a
// released keyless installs its own version's image by the digest the
// registry serves, or fails saying to pass --image REF@sha256:…; a
// development build installs :latest with a warning.
func TestControllerImage(t *testing.T) {
	var asked []string
	resolve := func(_ context.Context, ref string) (string, error) {
		asked = append(asked, ref)
		return testDigest, nil
	}
	unreachable := func(context.Context, string) (string, error) { return "", errors.New("dial tcp: no route to host") }
	for _, tc := range []struct {
		image, version string
		resolve        DigestResolver
		want, say, err string
	}{
		{"ghcr.io/keyless-cd/keyless@" + testDigest, "v1.2.3", unreachable, "ghcr.io/keyless-cd/keyless@" + testDigest, "", ""},
		{"registry.example/keyless:dev", "v1.2.3", unreachable, "registry.example/keyless:dev", "not pinned by digest", ""},
		{"", "v1.2.3", resolve, ImageRepository + ":v1.2.3@" + testDigest, "controller image " + ImageRepository + ":v1.2.3@" + testDigest, ""},
		{"", "v1.2.3-rc.1", resolve, ImageRepository + ":v1.2.3-rc.1@" + testDigest, "resolved at the registry", ""},
		{"", "v1.2.3", unreachable, "", "", "pass --image " + ImageRepository + "@sha256:"},
		{"", "v1.2.3-4-gabcdef0", unreachable, ImageRepository + ":latest", "is a development build", ""},
		{"", "devel", unreachable, ImageRepository + ":latest", "warning: keyless devel is a development build", ""},
	} {
		var out strings.Builder
		got, err := ControllerImage(t.Context(), tc.image, tc.version, tc.resolve, &out)
		switch {
		case tc.err != "":
			var ie *ImageError
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrImageUnresolved) || !errors.As(err, &ie) || ie.Ref != ImageRepository+":"+tc.version {
				t.Errorf("ControllerImage(%q, %q): %v, want an *ImageError saying %q", tc.image, tc.version, err, tc.err)
			}
		case err != nil || got != tc.want || !strings.Contains(out.String(), tc.say):
			t.Errorf("ControllerImage(%q, %q) = %q, %v, said %q; want %q saying %q", tc.image, tc.version, got, err, out.String(), tc.want, tc.say)
		}
	}
	if len(asked) != 2 || asked[0] != ImageRepository+":v1.2.3" {
		t.Errorf("the registry was asked for %v, want the release tags only", asked)
	}
}

// TestRegistryDigest: the digest is the one a real OCI registry serves for
// the tag (go-containerregistry's registry, in-process, on loopback), and
// an unknown tag is an error.
func TestRegistryDigest(t *testing.T) {
	srv := httptest.NewServer(registry.New())
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	want, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(host+"/keyless-cd/keyless:v1.2.3", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(tag, idx, remote.WithContext(t.Context())); err != nil {
		t.Fatal(err)
	}
	got, err := RegistryDigest(t.Context(), tag.String())
	if err != nil || got != want.String() {
		t.Fatalf("RegistryDigest = %q, %v; want %s", got, err, want)
	}
	if _, err := RegistryDigest(t.Context(), host+"/keyless-cd/keyless:v9.9.9"); err == nil {
		t.Error("RegistryDigest of a tag the registry does not have: no error")
	}
}

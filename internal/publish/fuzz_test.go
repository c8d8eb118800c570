package publish

import (
	"strings"
	"testing"

	"github.com/keyless-cd/keyless/internal/ociartifact"
)

// FuzzParseRef: an accepted reference prints as one that parses to the
// same, and names a repository with a registry and a path, a tag that is a
// tag, a digest that is a digest.
func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"oci://r.example/a/b:v1", "oci://127.0.0.1:5000/a", "oci://r/a:latest@sha256:" + strings.Repeat("ab", 32), "oci://r/a@x", "oci://:/:", "oci://0/0/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err != nil {
			return
		}
		if again, err := ParseRef(r.String()); err != nil || again != r {
			t.Fatalf("%q parses to %+v, which prints as %q, which parses to %+v (%v)", s, r, r.String(), again, err)
		}
		if host, path, ok := strings.Cut(r.Repository, "/"); !ok || host == "" || path == "" {
			t.Fatalf("%q: repository %q has no registry or path", s, r.Repository)
		}
		if r.Digest != "" && !ociartifact.IsDigest(r.Digest) {
			t.Fatalf("%q: digest %q", s, r.Digest)
		}
		if r.Tag != "" && (ociartifact.IsDigest(r.Tag) || strings.ContainsAny(r.Tag, "/@:")) {
			t.Fatalf("%q: tag %q", s, r.Tag)
		}
	})
}

package publish

import (
	"fmt"
	"strings"

	"github.com/keyless-cd/keyless/internal/ociartifact"
)

// Ref is an artifact reference: oci://registry/repository with a tag, a
// digest, or both (oci://registry/repo:tag@sha256:…).
type Ref struct {
	// Repository is registry/path (what oras-go takes), URL oci://Repository.
	Repository  string
	Tag, Digest string
}

// URL is the repository's oci:// URL (an Application's spec.source.repoURL).
func (r Ref) URL() string { return "oci://" + r.Repository }

func (r Ref) String() string {
	s := r.URL()
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// ParseRef parses oci://registry/path[:tag][@sha256:…].
func ParseRef(s string) (Ref, error) {
	rest, ok := strings.CutPrefix(s, "oci://")
	if !ok {
		return Ref{}, fmt.Errorf("%q: want oci://registry/repository:tag", s)
	}
	var r Ref
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		rest, r.Digest = rest[:i], rest[i+1:]
		if !ociartifact.IsDigest(r.Digest) {
			return Ref{}, fmt.Errorf("%q: %q is not a sha256 digest", s, r.Digest)
		}
	}
	// A tag follows the last ':' after the last '/' (a port comes before it).
	if i := strings.LastIndex(rest, ":"); i > strings.LastIndex(rest, "/") {
		rest, r.Tag = rest[:i], rest[i+1:]
		if !ociartifact.ValidTarget(r.Tag) || ociartifact.IsRange(r.Tag) || r.Tag == "" {
			return Ref{}, fmt.Errorf("%q: %q is not a tag", s, r.Tag)
		}
	}
	repo, err := ociartifact.SplitURL("oci://" + rest)
	if err != nil {
		return Ref{}, err
	}
	r.Repository = repo
	return r, nil
}

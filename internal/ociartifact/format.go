package ociartifact

import (
	"fmt"
	"regexp"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Media types of a Flux artifact (fluxcd/pkg/oci).
const (
	// ConfigMediaType is the media type of the artifact's config blob.
	ConfigMediaType = "application/vnd.cncf.flux.config.v1+json"
	// ContentMediaType is the media type of the layer holding the folder
	// as a gzipped tar.
	ContentMediaType = "application/vnd.cncf.flux.content.v1.tar+gzip"
)

// Annotations of the artifact's manifest. Source and Revision are Flux's
// (the OCI image spec's keys); the others are keyless's.
const (
	// AnnotationSource is the URL of the repository the folder came from.
	AnnotationSource = ocispec.AnnotationSource
	// AnnotationRevision is the source revision, as Flux writes it:
	// "branch@sha1:<commit>" (or any text the publisher chose).
	AnnotationRevision = ocispec.AnnotationRevision
	// AnnotationCreated is when the artifact was made (RFC 3339); keyless
	// publish writes it only from SOURCE_DATE_EPOCH or --created, so that
	// the same folder gives the same digest.
	AnnotationCreated = ocispec.AnnotationCreated
	// AnnotationPipeline names the CI job that published the artifact
	// (e.g. "gitlab.example.com/group/app pipeline 123 job 456"). It is a
	// claim of the publisher: verification trusts the signature's
	// certificate, never this text.
	AnnotationPipeline = "dev.keyless.pipeline"
)

// Resolved is an artifact pinned by its manifest's digest.
type Resolved struct {
	// Tag is the tag it was resolved from ("" when asked by digest).
	Tag string
	// Digest is the manifest's digest, "sha256:<hex>", and Size its length
	// (what a signature's subject names).
	Digest string
	Size   int64
	// Annotations are the manifest's.
	Annotations map[string]string
}

// Revision is the form keyless records in status and history, as Flux's
// OCIRepository does: "tag@sha256:<hex>", or the digest alone.
func (r Resolved) Revision() string {
	if r.Tag == "" {
		return r.Digest
	}
	return r.Tag + "@" + r.Digest
}

// ParseRevision splits a Revision into its tag ("" for a digest alone) and
// digest; the digest must be sha256:<64 hex>.
func ParseRevision(rev string) (tag, digest string, err error) {
	digest = rev
	if i := strings.LastIndex(rev, "@"); i >= 0 {
		tag, digest = rev[:i], rev[i+1:]
		if !tagRE.MatchString(tag) {
			return "", "", fmt.Errorf("revision %q: %q is not a tag", rev, tag)
		}
	}
	if !digestRE.MatchString(digest) {
		return "", "", fmt.Errorf("revision %q does not end in a sha256 digest", rev)
	}
	return tag, digest, nil
}

var (
	digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	// tagRE is the OCI distribution spec's tag grammar.
	tagRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)
)

// IsDigest reports whether s is a sha256 digest reference.
func IsDigest(s string) bool { return digestRE.MatchString(s) }

// SplitURL splits oci://registry/path into the repository reference
// ("registry/path") that oras-go takes. A tag or digest in the URL is
// refused: it goes in targetRevision (or the publish argument).
func SplitURL(repoURL string) (string, error) {
	rest, ok := strings.CutPrefix(repoURL, "oci://")
	if !ok {
		return "", fmt.Errorf("%q is not an oci:// URL", repoURL)
	}
	rest = strings.TrimSuffix(rest, "/")
	host, path, _ := strings.Cut(rest, "/")
	if host == "" || path == "" {
		return "", fmt.Errorf("%q: want oci://registry/repository", repoURL)
	}
	if strings.ContainsAny(path, "@:") {
		return "", fmt.Errorf("%q: put the tag or digest in targetRevision, not in the URL", repoURL)
	}
	return rest, nil
}

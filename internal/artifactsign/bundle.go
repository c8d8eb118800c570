package artifactsign

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	oras "oras.land/oras-go/v2"
	"oras.land/oras-go/v2/registry/remote"
)

// The format cosign v3 writes.
const (
	// BundleMediaType is the referrer's artifactType and its layer's media
	// type.
	BundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	// PredicateType is the in-toto predicate of a cosign signature.
	PredicateType = "https://sigstore.dev/cosign/sign/v1"
	// statementType and payloadType frame the signed statement.
	statementType = "https://in-toto.io/Statement/v1"
	payloadType   = "application/vnd.in-toto+json"
)

// Limits of what a registry may send when signatures are read.
const (
	maxReferrers     = 100
	maxManifestBytes = 1 << 20
	maxBundleBytes   = 1 << 20
)

// statement is the in-toto statement signed for subject (cosign's).
func statement(subject ocispec.Descriptor) ([]byte, error) {
	return json.Marshal(map[string]any{
		"_type":         statementType,
		"subject":       []any{map[string]any{"digest": map[string]string{subject.Digest.Algorithm().String(): subject.Digest.Encoded()}}},
		"predicateType": PredicateType,
		"predicate":     map[string]any{},
	})
}

// pushBundle stores bundleJSON as a referrer of subject, as cosign v3 does.
// On a registry without the referrers API the referrer is added to the
// index tagged sha256-<hex> (the OCI fallback); the index it replaces is
// left, not deleted (SkipReferrersGC): registries often refuse deletes.
func pushBundle(ctx context.Context, repo *remote.Repository, subject ocispec.Descriptor, bundleJSON []byte, now time.Time) (ocispec.Descriptor, error) {
	repo.SkipReferrersGC = true
	layer, err := oras.PushBytes(ctx, repo, BundleMediaType, bundleJSON)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("pushing the signature bundle: %w", err)
	}
	subj := ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}
	desc, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, BundleMediaType, oras.PackManifestOptions{
		Subject: &subj,
		Layers:  []ocispec.Descriptor{layer},
		ManifestAnnotations: map[string]string{
			"dev.sigstore.bundle.content":       "dsse-envelope",
			"dev.sigstore.bundle.predicateType": PredicateType,
			ocispec.AnnotationCreated:           now.UTC().Format(time.RFC3339),
		},
	})
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("pushing the signature's referrer manifest: %w", err)
	}
	return desc, nil
}

// ErrUnsigned is returned (wrapped) when an artifact has no signature.
var ErrUnsigned = errors.New("no signature")

// found is one signature bundle read from the registry.
type found struct {
	// where names it in errors: the referrer's digest.
	where  string
	bundle *sgbundle.Bundle
	err    error // a bundle that could not be read
}

// bundles reads the signature bundles referring to subject: at most
// maxReferrers referrers, each manifest and bundle bounded. A referrer of
// another kind is skipped (cosign's check: the layer's media type), not
// trusted by its artifactType alone.
func bundles(ctx context.Context, repo *remote.Repository, subject ocispec.Descriptor) ([]found, error) {
	var out []found
	n := 0
	err := repo.Referrers(ctx, subject, "", func(refs []ocispec.Descriptor) error {
		for _, r := range refs {
			if n++; n > maxReferrers {
				return fmt.Errorf("more than %d referrers of %s", maxReferrers, subject.Digest)
			}
			if r.Size > maxManifestBytes {
				continue
			}
			raw, err := fetchBounded(ctx, repo, r, maxManifestBytes)
			if err != nil {
				out = append(out, found{where: r.Digest.String(), err: err})
				continue
			}
			var m ocispec.Manifest
			if json.Unmarshal(raw, &m) != nil || len(m.Layers) != 1 || !strings.HasPrefix(m.Layers[0].MediaType, "application/vnd.dev.sigstore.bundle") {
				continue
			}
			if m.Layers[0].Size > maxBundleBytes {
				out = append(out, found{where: r.Digest.String(), err: fmt.Errorf("a bundle of %d bytes (more than %d)", m.Layers[0].Size, maxBundleBytes)})
				continue
			}
			bj, err := fetchBounded(ctx, repo, m.Layers[0], maxBundleBytes)
			if err != nil {
				out = append(out, found{where: r.Digest.String(), err: err})
				continue
			}
			var b sgbundle.Bundle
			if err := b.UnmarshalJSON(bj); err != nil {
				out = append(out, found{where: r.Digest.String(), err: fmt.Errorf("not a Sigstore bundle: %w", err)})
				continue
			}
			out = append(out, found{where: r.Digest.String(), bundle: &b})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing the signatures of %s: %w", subject.Digest, err)
	}
	return out, nil
}

// fetchBounded reads desc's content (at most limit bytes, checked against
// its digest).
func fetchBounded(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor, limit int64) ([]byte, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("digest %q: %w", desc.Digest, err)
	}
	if desc.Size > limit || desc.Size < 0 {
		return nil, fmt.Errorf("%s: %d bytes, more than %d", desc.Digest, desc.Size, limit)
	}
	rc, err := repo.Fetch(ctx, desc)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rc.Close() }()
	var b bytes.Buffer
	if _, err := io.Copy(&b, io.LimitReader(rc, limit+1)); err != nil {
		return nil, fmt.Errorf("%s: %w", desc.Digest, err)
	}
	if int64(b.Len()) != desc.Size {
		return nil, fmt.Errorf("%s: %d bytes, want %d", desc.Digest, b.Len(), desc.Size)
	}
	v := desc.Digest.Verifier()
	_, _ = v.Write(b.Bytes())
	if !v.Verified() {
		return nil, fmt.Errorf("%s: other bytes than the digest names", desc.Digest)
	}
	return b.Bytes(), nil
}

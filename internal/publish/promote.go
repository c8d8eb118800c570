package publish

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/keyless-cd/keyless/internal/artifactsign"
	"github.com/keyless-cd/keyless/internal/ociartifact"
)

// Promotion is what Promote did.
type Promotion struct {
	// From is the artifact promoted (its digest filled in).
	From Ref `json:"from"`
	// Tag is the tag now pointing at it; Previous the digest it pointed at
	// before ("" when new; equal to From.Digest when already there).
	Tag      string `json:"tag"`
	Previous string `json:"previous,omitempty"`
	// URL is oci://registry/repo:tag@digest.
	URL string `json:"url"`
}

// Promote points tag at the artifact from (a tag or a digest) in the same
// repository: the artifact, not a Git commit, is promoted. from must be an
// artifact (a Flux content layer); tag may already exist (it is moved).
// Signatures stay valid: they sign the digest, which does not change.
func Promote(ctx context.Context, from Ref, tag string, reg RegistryOptions) (*Promotion, error) {
	if !ociartifact.ValidTarget(tag) || ociartifact.IsRange(tag) || ociartifact.IsDigest(tag) || tag == "" {
		return nil, fmt.Errorf("--tag %q is not a tag", tag)
	}
	repo, err := reg.Repository(from)
	if err != nil {
		return nil, err
	}
	target := from.Digest
	if target == "" {
		target = from.Tag
	}
	if target == "" {
		return nil, fmt.Errorf("%s: name the artifact to promote by a tag or a digest", from)
	}
	res, err := ociartifact.Resolve(ctx, repo, target, ociartifact.Limits{})
	if err != nil {
		return nil, err
	}
	if from.Digest != "" && res.Digest != from.Digest {
		return nil, fmt.Errorf("%s now names %s: the tag moved since", from, res.Digest)
	}
	p := &Promotion{Tag: tag}
	if prev, err := ociartifact.Resolve(ctx, repo, tag, ociartifact.Limits{}); err == nil {
		p.Previous = prev.Digest
	}
	desc, err := repo.Resolve(ctx, res.Digest)
	if err != nil {
		return nil, err
	}
	if p.Previous != res.Digest {
		if err := repo.Tag(ctx, desc, tag); err != nil {
			return nil, fmt.Errorf("%s: tagging %s as %s: %w", from.URL(), res.Digest, tag, err)
		}
	}
	p.From = from
	p.From.Digest = res.Digest
	p.URL = Ref{Repository: from.Repository, Tag: tag, Digest: res.Digest}.String()
	return p, nil
}

// VerifyArtifact checks the signatures of the artifact ref (a tag or a
// digest) against policy (keyless oidc check --artifact).
func VerifyArtifact(ctx context.Context, ref Ref, reg RegistryOptions, policy artifactsign.Policy) (*artifactsign.Verified, error) {
	repo, err := reg.Repository(ref)
	if err != nil {
		return nil, err
	}
	target := ref.Digest
	if target == "" {
		target = ref.Tag
	}
	res, err := ociartifact.Resolve(ctx, repo, target, ociartifact.Limits{})
	if err != nil {
		return nil, err
	}
	subject := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.Digest(res.Digest), Size: res.Size}
	return artifactsign.Verify(ctx, repo, subject, policy)
}

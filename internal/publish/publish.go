package publish

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/keyless-cd/keyless/internal/artifactsign"
	"github.com/keyless-cd/keyless/internal/ociartifact"
)

// Options configure Run. Dir and Ref are required; the rest is filled in by
// Defaults from the CI platform's environment and the folder's Git
// checkout.
type Options struct {
	// Dir is the folder to publish.
	Dir string
	// Ref is where to push: oci://registry/repository:tag.
	Ref Ref
	// Source is the URL of the repository Dir comes from
	// (org.opencontainers.image.source).
	Source string
	// Revision is the source revision, Flux's form "branch@sha1:<commit>"
	// (org.opencontainers.image.revision).
	Revision string
	// Pipeline names the CI job (dev.keyless.pipeline): its URL.
	Pipeline string
	// Created is the artifact's creation time (org.opencontainers.image.created);
	// zero: none, so that the same folder gives the same digest.
	Created time.Time
	// Annotations are added to the manifest (after the ones above, which
	// they may not replace).
	Annotations map[string]string
	// Registry says how to reach the registry.
	Registry RegistryOptions
	// Sign, when set, signs the pushed artifact (with a key, or keylessly
	// with the CI job's token) and pushes the signature beside it.
	Sign *artifactsign.SignOptions
}

// Result is what was pushed.
type Result struct {
	// Ref is the artifact: repository, tag and the manifest's digest.
	Ref Ref `json:"ref"`
	// URL is the reference to deploy, oci://registry/repo:tag@sha256:….
	URL string `json:"url"`
	// Digest is the manifest's digest (spec.source.targetRevision pins it).
	Digest string `json:"digest"`
	// LayerDigest and Size describe the content layer.
	LayerDigest string `json:"layerDigest"`
	Size        int64  `json:"size"`
	// Annotations are the manifest's.
	Annotations map[string]string `json:"annotations"`
	// Signature is the signature pushed (with Options.Sign).
	Signature *artifactsign.Signed `json:"signature,omitempty"`
}

// Run packs opts.Dir and pushes it as opts.Ref.
func Run(ctx context.Context, opts Options) (*Result, error) {
	if opts.Ref.Tag == "" {
		return nil, fmt.Errorf("%s: give a tag to push to (oci://registry/repository:tag)", opts.Ref)
	}
	if opts.Ref.Digest != "" {
		return nil, fmt.Errorf("%s: a digest is what publishing makes; give only a tag", opts.Ref)
	}
	if info, err := os.Stat(opts.Dir); err != nil || !info.IsDir() {
		return nil, fmt.Errorf("%s is not a folder: %w", opts.Dir, errors.Join(err, os.ErrInvalid))
	}
	var layer bytes.Buffer
	if err := ociartifact.Pack(opts.Dir, &layer); err != nil {
		return nil, err
	}
	ann := map[string]string{}
	for k, v := range opts.Annotations {
		ann[k] = v
	}
	for k, v := range map[string]string{
		ociartifact.AnnotationSource: opts.Source, ociartifact.AnnotationRevision: opts.Revision,
		ociartifact.AnnotationPipeline: opts.Pipeline,
	} {
		if _, set := opts.Annotations[k]; set {
			return nil, fmt.Errorf("annotation %s is set from the source and the CI job; it cannot be given", k)
		}
		if v != "" {
			ann[k] = v
		}
	}
	if !opts.Created.IsZero() {
		ann[ociartifact.AnnotationCreated] = opts.Created.UTC().Format(time.RFC3339)
	}
	repo, err := opts.Registry.Repository(opts.Ref)
	if err != nil {
		return nil, err
	}
	desc, err := ociartifact.Push(ctx, repo, opts.Ref.Tag, layer.Bytes(), ann)
	if err != nil {
		return nil, err
	}
	m, _, err := ociartifact.Manifest(layer.Bytes(), ann)
	if err != nil {
		return nil, err
	}
	ref := opts.Ref
	ref.Digest = desc.Digest.String()
	res := &Result{Ref: ref, URL: ref.String(), Digest: ref.Digest, LayerDigest: m.Layers[0].Digest.String(),
		Size: m.Layers[0].Size, Annotations: ann}
	if opts.Sign != nil {
		if res.Signature, err = artifactsign.Sign(ctx, repo, desc, *opts.Sign); err != nil {
			return res, fmt.Errorf("%s was pushed but not signed: %w", res.URL, err)
		}
	}
	return res, nil
}

// CreatedFromEnv is SOURCE_DATE_EPOCH (seconds since 1970, the
// reproducible-builds convention) as a time, or zero when unset.
func CreatedFromEnv(getenv func(string) string) (time.Time, error) {
	s := getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return time.Time{}, nil
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not seconds since 1970: %w", s, err)
	}
	return time.Unix(sec, 0), nil
}

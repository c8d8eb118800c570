package helmrepo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"helm.sh/helm/v4/pkg/registry"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
)

// ociRepository returns the OCI repository of ref's chart with creds,
// reached over TLS, or over plain HTTP when plainHTTP (only ever with
// AllowInsecureHTTP).
func (f *Fetcher) ociRepository(repoURL, chartName string, creds *Credentials, plainHTTP bool) (*remote.Repository, error) {
	name := strings.TrimSuffix(strings.TrimPrefix(repoURL, registry.OCIScheme+"://"), "/")
	if chartName != "" {
		name += "/" + chartName
	}
	r, err := remote.NewRepository(name)
	if err != nil {
		return nil, fmt.Errorf("%s is not an OCI repository reference: %w (%w)", redact(repoURL), ErrUnsupported, err)
	}
	r.Client = &auth.Client{
		Client: f.client(creds),
		Cache:  auth.NewCache(),
		Credential: func(_ context.Context, hostport string) (auth.Credential, error) {
			if creds == nil || !creds.allows(hostport) {
				return auth.EmptyCredential, nil
			}
			return auth.Credential{Username: creds.Username, Password: creds.Password, AccessToken: creds.Token}, nil
		},
	}
	r.PlainHTTP = plainHTTP
	r.MaxMetadataBytes = f.opts.Limits.MaxManifestBytes
	r.SkipReferrersGC = true
	return r, nil
}

// withOCI runs fn against ref's repository over TLS; a registry answering
// plain HTTP is used as such only with AllowInsecureHTTP.
func (f *Fetcher) withOCI(repoURL, chartName string, creds *Credentials, fn func(*remote.Repository) error) error {
	r, err := f.ociRepository(repoURL, chartName, creds, false)
	if err != nil {
		return err
	}
	err = fn(r)
	if !errors.Is(err, http.ErrSchemeMismatch) {
		return err
	}
	if !f.opts.AllowInsecureHTTP {
		return fmt.Errorf("registry %s answers plain HTTP only: %w: use a registry with TLS (or --allow-insecure-http, for loopback tests only)", redact(repoURL), ErrInsecure)
	}
	if r, err = f.ociRepository(repoURL, chartName, creds, true); err != nil {
		return err
	}
	return fn(r)
}

// Registry runs fn against the OCI repository repoURL itself
// (oci://registry/path: an artifact's repository, not a chart under it)
// with creds, under the Fetcher's rules: the credential only to its hosts,
// the egress policy, TLS (plain HTTP only with AllowInsecureHTTP),
// Options.Timeout on top of ctx. It is how internal/ociartifact reaches a
// registry in the controller.
func (f *Fetcher) Registry(ctx context.Context, repoURL string, creds *Credentials, fn func(context.Context, *remote.Repository) error) error {
	ctx, cancel := f.withTimeout(ctx)
	defer cancel()
	if oci, err := f.repoKind(repoURL); err != nil {
		return err
	} else if !oci {
		return fmt.Errorf("%s is not an oci:// URL: %w", redact(repoURL), ErrUnsupported)
	}
	return f.withOCI(repoURL, "", creds, func(r *remote.Repository) error { return fn(ctx, r) })
}

// ociTag is the tag of a chart version (Helm writes + as _).
func ociTag(version string) string { return strings.ReplaceAll(version, "+", "_") }

func (f *Fetcher) resolveOCI(ctx context.Context, ref ChartRef, creds *Credentials) (Resolved, error) {
	var res Resolved
	err := f.withOCI(ref.RepoURL, ref.Chart, creds, func(r *remote.Repository) error {
		version := ref.Version
		if _, err := semver.StrictNewVersion(version); err != nil {
			tags, err := f.ociTags(ctx, r)
			if err != nil {
				return fmt.Errorf("%s: listing the tags: %w", ref, err)
			}
			if version, err = registry.GetTagMatchingVersionOrConstraint(tags, ref.Version); err != nil {
				return fmt.Errorf("%s: no tag matches (%d tags): %w", ref, len(tags), ErrNotFound)
			}
		}
		desc, err := r.Resolve(ctx, ociTag(version))
		if err != nil {
			return fmt.Errorf("%s: resolving tag %s: %w", ref, ociTag(version), notFound(err))
		}
		if desc.MediaType != ocispec.MediaTypeImageManifest {
			return fmt.Errorf("%s: tag %s is a %s, not an OCI image manifest of a Helm chart: %w", ref, ociTag(version), desc.MediaType, ErrUnsupported)
		}
		res = Resolved{RepoURL: ref.RepoURL, Chart: ref.Chart, Version: version, Digest: desc.Digest.String(),
			URL: strings.TrimSuffix(ref.RepoURL, "/") + "/" + ref.Chart + ":" + ociTag(version)}
		return nil
	})
	return res, err
}

// notFound marks a registry's 404 as ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, errdef.ErrNotFound) {
		return fmt.Errorf("%w (%w)", ErrNotFound, err)
	}
	return err
}

// ociTags lists at most MaxTags tags as versions (_ read as +), newest
// first as Helm's registry client sorts them; tags that are not semver are
// left out.
func (f *Fetcher) ociTags(ctx context.Context, r *remote.Repository) ([]string, error) {
	var versions []*semver.Version
	err := r.Tags(ctx, "", func(tags []string) error {
		for _, t := range tags {
			if len(versions) >= f.opts.Limits.MaxTags {
				return &LimitError{Limit: "MaxTags", Where: r.Reference.String(), Detail: fmt.Sprintf("the repository has more than %d tags", f.opts.Limits.MaxTags)}
			}
			if v, err := semver.StrictNewVersion(strings.ReplaceAll(t, "_", "+")); err == nil {
				versions = append(versions, v)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Sort(sort.Reverse(semver.Collection(versions)))
	out := make([]string, len(versions))
	for i, v := range versions {
		out[i] = v.Original()
	}
	return out, nil
}

// fetchOCI downloads r's manifest (verified against r.Digest) and its
// chart layer (verified against the layer's digest) into w.
func (f *Fetcher) fetchOCI(ctx context.Context, res Resolved, creds *Credentials, w io.Writer) error {
	return f.withOCI(res.RepoURL, res.Chart, creds, func(r *remote.Repository) error {
		desc, rc, err := r.FetchReference(ctx, res.Digest)
		if err != nil {
			return fmt.Errorf("%s: fetching manifest %s: %w", res, res.Digest, notFound(err))
		}
		defer func() { _ = rc.Close() }()
		limit := f.opts.Limits.MaxManifestBytes
		if desc.Size > limit {
			return &LimitError{Limit: "MaxManifestBytes", Where: res.String(), Detail: fmt.Sprintf("the manifest is larger than %d bytes", limit)}
		}
		raw, err := io.ReadAll(io.LimitReader(rc, limit+1))
		if err != nil {
			return fmt.Errorf("%s: fetching manifest %s: %w", res, res.Digest, err)
		}
		if int64(len(raw)) > limit {
			return &LimitError{Limit: "MaxManifestBytes", Where: res.String(), Detail: fmt.Sprintf("the manifest is larger than %d bytes", limit)}
		}
		if got := fmt.Sprintf("sha256:%x", sha256.Sum256(raw)); got != res.Digest {
			return &DigestError{What: res.String() + " (manifest)", Want: res.Digest, Got: got}
		}
		layer, err := chartLayer(raw)
		if err != nil {
			return fmt.Errorf("%s: manifest %s: %w", res, res.Digest, err)
		}
		if layer.Size > f.opts.Limits.MaxChartBytes {
			return &LimitError{Limit: "MaxChartBytes", Where: res.String(), Detail: fmt.Sprintf("the chart layer is %d bytes, more than %d", layer.Size, f.opts.Limits.MaxChartBytes)}
		}
		if layer.Digest.Algorithm() != "sha256" {
			return fmt.Errorf("%s: chart layer digest %s is not sha256: %w", res, layer.Digest, ErrDigest)
		}
		blob, err := r.Blobs().Fetch(ctx, layer)
		if err != nil {
			return fmt.Errorf("%s: fetching the chart layer %s: %w", res, layer.Digest, err)
		}
		defer func() { _ = blob.Close() }()
		return f.copyVerified(res.String()+" (chart layer)", blob, layer.Size, layer.Digest.String(), w)
	})
}

// chartLayer returns the Helm chart layer of an OCI manifest.
func chartLayer(raw []byte) (ocispec.Descriptor, error) {
	var m ocispec.Manifest
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&m); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("not an OCI manifest: %w", err)
	}
	if m.Config.MediaType != registry.ConfigMediaType {
		return ocispec.Descriptor{}, fmt.Errorf("config media type %q is not a Helm chart's (%s): %w", m.Config.MediaType, registry.ConfigMediaType, ErrUnsupported)
	}
	var found []ocispec.Descriptor
	for _, l := range m.Layers {
		if l.MediaType == registry.ChartLayerMediaType || l.MediaType == registry.LegacyChartLayerMediaType {
			found = append(found, l)
		}
	}
	if len(found) != 1 {
		return ocispec.Descriptor{}, fmt.Errorf("%d chart layers (%s), want 1: %w", len(found), registry.ChartLayerMediaType, ErrUnsupported)
	}
	return found[0], nil
}

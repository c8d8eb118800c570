package ociartifact

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"
)

// fetchManifest reads the manifest of digest from repo, bounded by
// MaxManifestBytes and checked against digest.
func fetchManifest(ctx context.Context, repo *remote.Repository, digest string, limits Limits) (*ocispec.Manifest, error) {
	where := repo.Reference.String() + "@" + digest
	desc, rc, err := repo.FetchReference(ctx, digest)
	if err != nil {
		return nil, fmt.Errorf("%s: fetching the manifest: %w", where, notFound(err))
	}
	defer func() { _ = rc.Close() }()
	limit := limits.MaxManifestBytes
	if desc.Size > limit {
		return nil, &LimitError{Limit: "MaxManifestBytes", Where: where, Detail: fmt.Sprintf("the manifest is %d bytes, more than %d", desc.Size, limit)}
	}
	raw, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: fetching the manifest: %w", where, err)
	}
	if int64(len(raw)) > limit {
		return nil, &LimitError{Limit: "MaxManifestBytes", Where: where, Detail: fmt.Sprintf("the manifest is larger than %d bytes", limit)}
	}
	if got := fmt.Sprintf("sha256:%x", sha256.Sum256(raw)); got != digest {
		return nil, &DigestError{What: where + " (manifest)", Want: digest, Got: got}
	}
	var m ocispec.Manifest
	if err := json.NewDecoder(bytes.NewReader(raw)).Decode(&m); err != nil {
		return nil, fmt.Errorf("%s: not an OCI manifest: %w", where, err)
	}
	if m.MediaType != "" && m.MediaType != ocispec.MediaTypeImageManifest {
		return nil, fmt.Errorf("%s: a %s, not an OCI image manifest: %w", where, m.MediaType, ErrNotArtifact)
	}
	if _, err := contentLayer(&m); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return &m, nil
}

// contentLayer is the manifest's one layer of ContentMediaType.
func contentLayer(m *ocispec.Manifest) (ocispec.Descriptor, error) {
	var found []ocispec.Descriptor
	var types []string
	for _, l := range m.Layers {
		types = append(types, l.MediaType)
		if l.MediaType == ContentMediaType {
			found = append(found, l)
		}
	}
	if len(found) != 1 {
		return ocispec.Descriptor{}, fmt.Errorf("%d layers of %s (layers: %s), want 1: %w", len(found), ContentMediaType, strings.Join(types, ", "), ErrNotArtifact)
	}
	if found[0].Digest.Algorithm() != "sha256" || found[0].Digest.Validate() != nil {
		return ocispec.Descriptor{}, fmt.Errorf("content layer digest %q is not sha256: %w", found[0].Digest, ErrUnsafe)
	}
	return found[0], nil
}

// Fetch brings the artifact of digest here: its manifest checked against
// digest, its content layer checked against the manifest and unpacked
// read-only into cacheDir/<hex> (once per digest; a later call finds it
// there and refreshes its modification time, which Retain reads). It
// returns that folder.
func Fetch(ctx context.Context, repo *remote.Repository, digest, cacheDir string, limits Limits) (string, error) {
	limits = limits.WithDefaults()
	if !IsDigest(digest) {
		return "", fmt.Errorf("%q is not a sha256 digest", digest)
	}
	dir := filepath.Join(cacheDir, strings.TrimPrefix(digest, "sha256:"))
	if info, err := os.Stat(dir); err == nil && info.IsDir() {
		now := time.Now()
		_ = os.Chtimes(dir, now, now)
		return dir, nil
	}
	m, err := fetchManifest(ctx, repo, digest, limits)
	if err != nil {
		return "", err
	}
	layer, _ := contentLayer(m)
	where := repo.Reference.String() + "@" + digest
	if layer.Size > limits.MaxLayerBytes || layer.Size < 0 {
		return "", &LimitError{Limit: "MaxLayerBytes", Where: where, Detail: fmt.Sprintf("the content layer is %d bytes, more than %d", layer.Size, limits.MaxLayerBytes)}
	}
	if err := os.MkdirAll(cacheDir, 0o700); err != nil {
		return "", err
	}
	blob, err := os.CreateTemp(cacheDir, ".layer-")
	if err != nil {
		return "", err
	}
	defer func() { _ = blob.Close(); _ = os.Remove(blob.Name()) }()
	if err := download(ctx, repo, layer, blob, where); err != nil {
		return "", err
	}
	if _, err := blob.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(cacheDir, ".unpack-")
	if err != nil {
		return "", err
	}
	defer func() { _ = RemoveTree(tmp) }()
	if err := Unpack(ctx, blob, tmp, limits); err != nil {
		return "", fmt.Errorf("%s (layer %s): %w", where, layer.Digest, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if info, err2 := os.Stat(dir); err2 == nil && info.IsDir() {
			return dir, nil // another caller unpacked the same digest first
		}
		return "", err
	}
	return dir, nil
}

// download copies layer into w, bounded by its size and checked against
// its digest.
func download(ctx context.Context, repo *remote.Repository, layer ocispec.Descriptor, w io.Writer, where string) error {
	rc, err := repo.Blobs().Fetch(ctx, layer)
	if err != nil {
		return fmt.Errorf("%s: fetching the content layer %s: %w", where, layer.Digest, notFound(err))
	}
	defer func() { _ = rc.Close() }()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(rc, layer.Size+1))
	if err != nil && !errors.Is(err, io.EOF) {
		// oras-go's own check of the digest fails the read of tampered
		// bytes: report it as the digest error it is.
		return &DigestError{What: fmt.Sprintf("%s (content layer)", where), Want: layer.Digest.String(), Got: "other bytes (" + err.Error() + ")"}
	}
	got := fmt.Sprintf("sha256:%x", h.Sum(nil))
	if n != layer.Size || got != layer.Digest.String() {
		return &DigestError{What: fmt.Sprintf("%s (content layer, %d bytes, want %d)", where, n, layer.Size), Want: layer.Digest.String(), Got: got}
	}
	return nil
}

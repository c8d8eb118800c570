package ociartifact

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"
)

// emptyConfig is the config blob keyless pushes: the one `flux push
// artifact` writes (go-containerregistry's empty image config, 115 bytes,
// sha256:5b943e2b…), so an artifact looks the same whichever tool pushed
// it. Readers ignore the config; its media type says what the artifact is.
var emptyConfig = []byte(`{"architecture":"","created":"0001-01-01T00:00:00Z","os":"","rootfs":{"type":"layers","diff_ids":null},"config":{}}`)

// Manifest returns the manifest of an artifact whose content layer is
// layer (Pack's output), with annotations, and its JSON: the same inputs
// give the same bytes.
func Manifest(layer []byte, annotations map[string]string) (ocispec.Manifest, []byte, error) {
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ConfigMediaType, Digest: digest.FromBytes(emptyConfig), Size: int64(len(emptyConfig))},
		Layers:    []ocispec.Descriptor{{MediaType: ContentMediaType, Digest: digest.FromBytes(layer), Size: int64(len(layer))}},
	}
	if len(annotations) > 0 {
		m.Annotations = annotations
	}
	raw, err := json.Marshal(m) // map keys sorted: reproducible
	return m, raw, err
}

// Push uploads an artifact (its config, content layer and manifest) to repo
// and tags it; it returns the manifest's descriptor. Blobs the registry
// has already are not sent again.
func Push(ctx context.Context, repo *remote.Repository, tag string, layer []byte, annotations map[string]string) (ocispec.Descriptor, error) {
	if !tagRE.MatchString(tag) {
		return ocispec.Descriptor{}, fmt.Errorf("%q is not a tag", tag)
	}
	m, raw, err := Manifest(layer, annotations)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	for _, b := range []struct {
		desc ocispec.Descriptor
		data []byte
	}{{m.Config, emptyConfig}, {m.Layers[0], layer}} {
		ok, err := repo.Blobs().Exists(ctx, b.desc)
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("%s: %w", repo.Reference.String(), err)
		}
		if ok {
			continue
		}
		if err := repo.Blobs().Push(ctx, b.desc, bytes.NewReader(b.data)); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("%s: pushing %s: %w", repo.Reference.String(), b.desc.Digest, err)
		}
	}
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(raw), Size: int64(len(raw))}
	if err := repo.PushReference(ctx, desc, bytes.NewReader(raw), tag); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("%s:%s: pushing the manifest: %w", repo.Reference.String(), tag, err)
	}
	return desc, nil
}

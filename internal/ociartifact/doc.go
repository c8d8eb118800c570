// Package ociartifact reads and writes a folder of manifests as an OCI
// artifact in the format Flux uses (`flux push artifact`, source-controller's
// OCIRepository): an OCI image manifest whose config has the media type
// ConfigMediaType and whose one content layer (ContentMediaType) is a
// gzipped tar of the folder, annotated with where it came from
// (org.opencontainers.image.source and .revision). Artifacts pushed by Flux
// are read by keyless and the other way round.
//
// The API:
//
//	res, err := ociartifact.Resolve(ctx, repo, "1.x", limits) // a tag, a semver range or sha256:…
//	dir, err := ociartifact.Fetch(ctx, repo, res.Digest, cacheDir, limits) // verified, unpacked read-only, cached by digest
//	var buf bytes.Buffer
//	err = ociartifact.Pack(srcDir, &buf)                      // reproducible: same files, same bytes
//	desc, err := ociartifact.Push(ctx, repo, "v1", buf.Bytes(), annotations)
//
// repo is an oras-go remote.Repository set up by the caller with its
// credentials and transport (internal/helmrepo's registry client in the
// controller: host-bound credentials, egress policy, no plain HTTP without
// --allow-insecure-http).
//
// Everything a registry sends may be crafted: the manifest is bounded
// (Limits.MaxManifestBytes) and checked against the digest asked for; the
// layer is bounded (MaxLayerBytes) and checked against the manifest's digest
// before it is unpacked; unpacking goes through an os.Root with the rules of
// a Git checkout (confine.CheckName, confine.CheckSymlink: no entry or
// symlink leaving the folder, no .git), refuses hard links, device files
// and FIFOs, and bounds the entries (MaxFiles), the bytes written
// (MaxUnpackedBytes) and the depth. Errors name the entry or the Limits
// field; a refused artifact leaves nothing in the cache.
package ociartifact

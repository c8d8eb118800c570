package main

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/keyless-cd/keyless/hack/internal/gobuild"
)

// The image's fixed facts.
const (
	// BinaryPath is where the keyless binary sits in the image.
	BinaryPath = "/usr/local/bin/keyless"
	// User is the numeric non-root user (and group) the image runs as:
	// distroless's "nonroot", so runAsNonRoot works without a name lookup.
	User = "65532:65532"
)

// Options configure Build.
type Options struct {
	// Module is the keyless module's folder. Default ".".
	Module string
	// Platforms are os/arch pairs. Default linux/amd64 and linux/arm64.
	Platforms []string
	// Version is stamped into the binary; Revision and Source go into the
	// OCI annotations. Defaults from git.
	Version, Revision, Source string
	// Out and Push: see the flags.
	Out, Push string
	// Binaries are prebuilt keyless binaries by platform ("linux/amd64" →
	// path), built as gobuild.Keyless builds them (make release passes its
	// own, so the image holds the very binaries it publishes). A platform
	// without one is compiled here.
	Binaries map[string]string
}

func (o *Options) withDefaults(ctx context.Context) {
	if o.Module == "" {
		o.Module = "."
	}
	if len(o.Platforms) == 0 {
		o.Platforms = []string{"linux/amd64", "linux/arm64"}
	}
	if o.Revision == "" {
		o.Revision = gobuild.Git(ctx, o.Module, "rev-parse", "HEAD")
	}
	if o.Version == "" {
		o.Version = gobuild.Git(ctx, o.Module, "describe", "--tags", "--always", "--dirty")
	}
	if o.Version == "" {
		o.Version = "devel"
	}
}

// Build compiles keyless for each platform and assembles the image index.
// Timestamps are the commit's (SOURCE_DATE_EPOCH when set), so the same
// commit gives the same digest.
func Build(ctx context.Context, o Options, progress io.Writer) (v1.ImageIndex, error) {
	o.withDefaults(ctx)
	created := gobuild.SourceDate(ctx, o.Module)
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	tmp, err := os.MkdirTemp("", "keyless-image-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	for _, p := range o.Platforms {
		osName, arch, ok := strings.Cut(strings.TrimSpace(p), "/")
		if !ok || osName != "linux" {
			return nil, fmt.Errorf("platform %q: want linux/ARCH", p)
		}
		bin := o.Binaries[osName+"/"+arch]
		if bin == "" {
			_, _ = fmt.Fprintf(progress, "building keyless %s for %s ...\n", o.Version, p)
			bin = filepath.Join(tmp, "keyless-"+arch)
			if err := gobuild.Keyless(ctx, o.Module, "linux", arch, o.Version, bin); err != nil {
				return nil, err
			}
		}
		img, err := image(o, bin, arch, created)
		if err != nil {
			return nil, err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: osName, Architecture: arch}}})
	}
	return mutate.Annotations(idx, annotations(o, created)).(v1.ImageIndex), nil
}

// image is one platform's image: a single layer with the binary and an
// /etc/passwd naming the non-root user; no shell, no package manager.
func image(o Options, bin, arch string, created time.Time) (v1.Image, error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := []string{"etc/", "usr/", "usr/local/", "usr/local/bin/"}
	for _, d := range dirs {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: created, Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
	}
	files := []struct {
		name string
		mode int64
		data []byte
	}{
		{"etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{"etc/group", 0o644, []byte("root:x:0:\nnonroot:x:65532:\n")},
		{strings.TrimPrefix(BinaryPath, "/"), 0o755, data},
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: created, Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layerBytes := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBytes)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{Layer: layer, History: v1.History{Created: v1.Time{Time: created}, CreatedBy: "hack/image: keyless " + o.Version}})
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture, cfg.Created = "linux", arch, v1.Time{Time: created}
	cfg.Config.User = User
	cfg.Config.Entrypoint = []string{BinaryPath}
	cfg.Config.Cmd = []string{"controller"}
	cfg.Config.WorkingDir = "/"
	cfg.Config.Env = []string{"PATH=/usr/local/bin", "HOME=/home/nonroot"}
	cfg.Config.Labels = annotations(o, created)
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return nil, err
	}
	return mutate.Annotations(img, annotations(o, created)).(v1.Image), nil
}

func annotations(o Options, created time.Time) map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":    "keyless",
		"org.opencontainers.image.source":   o.Source,
		"org.opencontainers.image.revision": o.Revision,
		"org.opencontainers.image.version":  o.Version,
		"org.opencontainers.image.created":  created.UTC().Format(time.RFC3339),
		"org.opencontainers.image.licenses": "Apache-2.0",
	}
}

// WriteLayout writes idx as an OCI image layout in dir (replacing it).
func WriteLayout(dir string, idx v1.ImageIndex) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	_, err := layout.Write(dir, idx)
	return err
}

// Push pushes idx to ref and returns the pushed reference by digest. A
// loopback registry is spoken to over plain HTTP.
func Push(ctx context.Context, ref string, idx v1.ImageIndex) (string, error) {
	var opts []name.Option
	if host := strings.SplitN(ref, "/", 2)[0]; strings.HasPrefix(host, "127.0.0.1:") || strings.HasPrefix(host, "localhost:") {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return "", fmt.Errorf("--push %s: %w", ref, err)
	}
	if err := remote.WriteIndex(r, idx, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return "", fmt.Errorf("pushing %s: %w", ref, err)
	}
	digest, err := idx.Digest()
	if err != nil {
		return "", err
	}
	return r.Context().Digest(digest.String()).String(), nil
}

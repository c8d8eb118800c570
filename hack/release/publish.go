package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"helm.sh/helm/v4/pkg/registry"

	"github.com/keyless-cd/keyless/hack/internal/gobuild"
)

// Published is what Publish pushed, by digest.
type Published struct {
	// Image is REGISTRY/keyless:VERSION@sha256:…, as image.txt recorded it.
	Image string
	// Chart is oci://REGISTRY/charts/keyless:X.Y.Z@sha256:… (also written to
	// chart.txt); empty when the release has no chart.
	Chart string
}

// Publish pushes the release Build wrote into Dist: the image to
// REGISTRY/keyless:VERSION, checked against the digest image.txt recorded,
// and the chart to oci://REGISTRY/charts. A loopback registry is spoken to
// over plain HTTP.
func Publish(ctx context.Context, o Options) (*Published, error) {
	if err := o.defaults(ctx); err != nil {
		return nil, err
	}
	dist := o.path(o.Dist)
	p := &Published{}
	image, err := publishImage(ctx, o, dist)
	if err != nil {
		return nil, err
	}
	p.Image = image
	chart, err := publishChart(ctx, o, dist)
	if err != nil {
		return nil, err
	}
	p.Chart = chart
	return p, nil
}

// ErrNoImage is returned (wrapped) when a built release has no image to
// publish (no linux platform was built).
var ErrNoImage = errors.New("the release has no image")

func publishImage(ctx context.Context, o Options, dist string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dist, ImageFile))
	if err != nil {
		if _, built := os.Stat(filepath.Join(dist, ChecksumsFile)); errors.Is(err, fs.ErrNotExist) && built == nil {
			return "", fmt.Errorf("%w: %s holds a release built without a linux platform (PLATFORMS), which has no image to publish: build it again with linux/amd64 or linux/arm64 in PLATFORMS", ErrNoImage, dist)
		}
		return "", fmt.Errorf("%w: run make release VERSION=%s first", err, o.Version)
	}
	recorded := strings.TrimSpace(string(b))
	want := o.imageRepo() + ":" + o.Version + "@"
	if !strings.HasPrefix(recorded, want) {
		return "", fmt.Errorf("%s names %s, not %s…: build with the same VERSION and RELEASE_REGISTRY you publish with", ImageFile, recorded, want)
	}
	digest := strings.TrimPrefix(recorded, want)
	idx, err := layout.ImageIndexFromPath(filepath.Join(dist, ImageLayout))
	if err != nil {
		return "", fmt.Errorf("the image layout: %w", err)
	}
	d, err := idx.Digest()
	if err != nil {
		return "", fmt.Errorf("the image layout: %w", err)
	}
	if d.String() != digest {
		return "", fmt.Errorf("%s/ holds %s, but %s recorded %s: rebuild the release", ImageLayout, d, ImageFile, digest)
	}
	tag, err := name.NewTag(o.imageRepo()+":"+o.Version, nameOptions(o.Registry)...)
	if err != nil {
		return "", err
	}
	_, _ = fmt.Fprintf(o.Progress, "pushing %s ...\n", tag)
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}
	if o.Username != "" {
		opts = append(opts, remote.WithAuth(&authn.Basic{Username: o.Username, Password: o.Password}))
	}
	if err := remote.WriteIndex(tag, idx, opts...); err != nil {
		return "", fmt.Errorf("pushing %s: %w", tag, err)
	}
	served, err := remote.Head(tag, opts...)
	if err != nil {
		return "", fmt.Errorf("reading back %s: %w", tag, err)
	}
	if served.Digest.String() != digest {
		return "", fmt.Errorf("%s serves %s after the push, not %s", tag, served.Digest, digest)
	}
	return recorded, nil
}

func publishChart(ctx context.Context, o Options, dist string) (string, error) {
	archive := filepath.Join(dist, "keyless-"+strings.TrimPrefix(o.Version, "v")+".tgz")
	data, err := os.ReadFile(archive)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	opts := []registry.ClientOption{}
	if isLoopback(o.Registry) {
		opts = append(opts, registry.ClientOptPlainHTTP())
	}
	if o.Username != "" {
		opts = append(opts, registry.ClientOptBasicAuth(o.Username, o.Password))
	}
	client, err := registry.NewClient(opts...)
	if err != nil {
		return "", err
	}
	ref := o.Registry + "/" + ChartsPath + "/keyless:" + strings.TrimPrefix(o.Version, "v")
	_, _ = fmt.Fprintf(o.Progress, "pushing oci://%s ...\n", ref)
	res, err := client.Push(data, ref, registry.PushOptCreationTime(gobuild.SourceDate(ctx, o.Module).Format(time.RFC3339)))
	if err != nil {
		return "", fmt.Errorf("pushing the chart to oci://%s: %w", ref, err)
	}
	pushed := "oci://" + ref + "@" + res.Manifest.Digest
	if err := os.WriteFile(filepath.Join(dist, ChartFile), []byte(pushed+"\n"), 0o644); err != nil { //nolint:gosec // a public release file
		return "", err
	}
	return pushed, nil
}

// isLoopback tells whether registry (host[:port][/path]) is on this machine.
func isLoopback(registry string) bool {
	host := strings.SplitN(registry, "/", 2)[0]
	return strings.HasPrefix(host, "127.0.0.1:") || strings.HasPrefix(host, "localhost:") || host == "localhost"
}

func nameOptions(registry string) []name.Option {
	if isLoopback(registry) {
		return []name.Option{name.Insecure}
	}
	return nil
}

package main

import (
	"archive/tar"
	"debug/elf"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestImage builds the controller image for this machine's architecture
// twice (the same digest), pushes it to a real OCI registry on loopback
// (go-containerregistry's, in-process), pulls it back by digest, checks its
// config (numeric non-root user, entrypoint, annotations), that it holds no
// shell and a static binary, and runs the binary's `keyless version`.
func TestImage(t *testing.T) {
	ctx := t.Context()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Module: root, Platforms: []string{"linux/" + runtime.GOARCH}, Version: "v0.0.0-test", Revision: "0123456789abcdef", Source: "https://example.com/keyless"}
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	first, err := Build(ctx, opts, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Build(ctx, opts, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := first.Digest()
	d2, _ := second.Digest()
	if d1 != d2 {
		t.Fatalf("two builds of one commit: %s and %s", d1, d2)
	}

	reg := httptest.NewServer(registry.New())
	t.Cleanup(reg.Close)
	host := strings.TrimPrefix(reg.URL, "http://")
	pushed, err := Push(ctx, host+"/keyless:test", first)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(pushed, "@"+d1.String()) {
		t.Fatalf("pushed %s, want the digest %s", pushed, d1)
	}
	ref, err := name.ParseReference(pushed, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(ref, remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(manifest.Manifests) != 1 || manifest.Manifests[0].Platform.Architecture != runtime.GOARCH {
		t.Fatalf("index: %+v", manifest.Manifests)
	}
	if manifest.Annotations["org.opencontainers.image.revision"] != opts.Revision || manifest.Annotations["org.opencontainers.image.source"] != opts.Source {
		t.Errorf("index annotations: %v", manifest.Annotations)
	}
	img, err := remote.Image(ref.Context().Digest(manifest.Manifests[0].Digest.String()), remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.User != "65532:65532" || !slices.Equal(cfg.Config.Entrypoint, []string{BinaryPath}) || cfg.OS != "linux" || cfg.Architecture != runtime.GOARCH {
		t.Fatalf("config: user %q entrypoint %v %s/%s", cfg.Config.User, cfg.Config.Entrypoint, cfg.OS, cfg.Architecture)
	}

	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rc.Close() }()
	bin := filepath.Join(t.TempDir(), "keyless")
	var files []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		files = append(files, h.Name)
		if "/"+h.Name == BinaryPath {
			if h.Mode != 0o755 {
				t.Errorf("binary mode %o", h.Mode)
			}
			f, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o700)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil { //nolint:gosec // our own image
				t.Fatal(err)
			}
			_ = f.Close()
		}
	}
	if want := []string{"etc/passwd", "etc/group", strings.TrimPrefix(BinaryPath, "/")}; !slices.Equal(files, want) {
		t.Fatalf("image files %v, want only %v (no shell)", files, want)
	}
	ef, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary is dynamically linked (has an ELF interpreter)")
		}
	}
	_ = ef.Close()
	out, err := exec.CommandContext(ctx, bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "keyless v0.0.0-test") {
		t.Fatalf("keyless version from the image: %v\n%s", err, out)
	}
}

package main

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/registry"

	"github.com/keyless-cd/keyless/internal/registrytest"
)

// registryEnv names the CNCF Distribution registry binary (`make registry`
// builds bin/registry; `make test` sets it).
const registryEnv = "KEYLESS_REGISTRY"

// TestReleaseDryRun runs the release end to end for this machine's platform
// (linux/GOARCH: one binary, the image of it), as make release and make
// release-publish do, against a real registry on loopback: the image and the
// chart are pushed and the registry serves the digests image.txt and
// chart.txt recorded; checksums.txt verifies (with sha256sum -c too); each
// SBOM lists every module of its binary's build information; the archived
// binary prints its version; a second build gives identical checksums and
// image digest (reproducible). Only the host platform is built: the other
// three cost minutes each, cold, on a small machine.
func TestReleaseDryRun(t *testing.T) {
	regBin := os.Getenv(registryEnv)
	if regBin == "" {
		t.Skipf("%s is unset (make test sets it; make registry builds bin/registry)", registryEnv)
	}
	ctx := t.Context()
	root := moduleRoot(t)
	host := registrytest.Start(t, regBin)
	const v = "v0.0.0-releasetest"
	platform := "linux/" + runtime.GOARCH
	chartDir := filepath.Join(root, DefaultChart)
	if _, err := os.Stat(filepath.Join(chartDir, "Chart.yaml")); err != nil {
		chartDir = fixtureChart(t)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	opts := func(dist string) Options {
		return Options{Module: root, Version: v, Dist: dist, Platforms: []string{platform}, Registry: host + "/keyless-cd",
			Chart: chartDir, SBOMTool: sbomTool(t, root), Revision: "0123456789abcdef0123456789abcdef01234567", Progress: io.Discard}
	}
	dist := filepath.Join(t.TempDir(), "dist")
	m, err := Build(ctx, opts(dist))
	if err != nil {
		t.Fatal(err)
	}
	if want := host + "/keyless-cd/keyless:" + v + "@sha256:"; !strings.HasPrefix(m.Image, want) {
		t.Fatalf("image %q, want %s…", m.Image, want)
	}
	if m.Chart != "keyless-0.0.0-releasetest.tgz" {
		t.Errorf("chart archive %q", m.Chart)
	}

	sums := verifyChecksums(t, dist)
	for _, f := range []string{ArchiveName(platform), SBOMName(platform), ImageFile, m.Chart} {
		if _, ok := sums[f]; !ok {
			t.Errorf("checksums.txt does not list %s", f)
		}
	}
	bin := extract(t, filepath.Join(dist, ArchiveName(platform)))
	if out, err := exec.CommandContext(ctx, bin, "--version").CombinedOutput(); err != nil || !strings.Contains(string(out), v) {
		t.Errorf("keyless --version from the archive: %v\n%s", err, out)
	}
	checkSBOM(t, filepath.Join(dist, SBOMName(platform)), bin, v)
	checkChart(t, filepath.Join(dist, m.Chart), v, m.Image)

	// Reproducible: a second build of the same tree is the same, byte for byte.
	again := filepath.Join(t.TempDir(), "dist")
	if _, err := Build(ctx, opts(again)); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(filepath.Join(dist, ChecksumsFile))
	second, _ := os.ReadFile(filepath.Join(again, ChecksumsFile))
	if string(first) != string(second) {
		t.Errorf("two builds differ:\n%s\n%s", first, second)
	}

	// Publish, then ask the registry what it serves.
	pub, err := Publish(ctx, opts(dist))
	if err != nil {
		t.Fatal(err)
	}
	if pub.Image != m.Image {
		t.Errorf("published %s, built %s", pub.Image, m.Image)
	}
	tag, err := name.NewTag(host+"/keyless-cd/keyless:"+v, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Head(tag, remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(m.Image, "@"+desc.Digest.String()) {
		t.Errorf("the registry serves %s for %s, image.txt recorded %s", desc.Digest, tag, m.Image)
	}
	idx, err := remote.Index(tag, remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || im.Manifests[0].Platform.String() != platform {
		t.Errorf("image index: %+v", im.Manifests)
	}
	checkPushedChart(t, host, dist, pub.Chart)
}

// TestReleaseRefusesNonReleaseVersions: a build of a git describe or a
// pseudo-version would publish an image no install resolves.
func TestReleaseRefusesNonReleaseVersions(t *testing.T) {
	for _, v := range []string{"", "devel", "1d9788d-dirty", "v1.2.3-4-gabcdef0", "1.2.3"} {
		_, err := Build(t.Context(), Options{Module: t.TempDir(), Version: v, Dist: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), "is not a release") {
			t.Errorf("Build(version %q): %v, want a refusal", v, err)
		}
	}
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Build(t.Context(), Options{Module: src, Version: "v1.0.0", Dist: src}); err == nil || !strings.Contains(err.Error(), "holds go.mod") {
		t.Errorf("Build into a source tree: %v, want a refusal", err)
	}
	if _, err := os.Stat(filepath.Join(src, "go.mod")); err != nil {
		t.Errorf("the source tree was emptied: %v", err)
	}
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// sbomTool is bin/tools/cyclonedx-gomod (make test builds it), else built
// here from hack/sbom/go.mod.
func sbomTool(t *testing.T, root string) string {
	t.Helper()
	p := filepath.Join(root, "bin", "tools", "cyclonedx-gomod")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	p = filepath.Join(t.TempDir(), "cyclonedx-gomod")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-modfile="+filepath.Join(root, "hack", "sbom", "go.mod"), "-o", p,
		"github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building cyclonedx-gomod: %v\n%s", err, out)
	}
	return p
}

// fixtureChart is a chart shaped like charts/keyless (hack/chart's
// values.yaml), for a tree without it.
func fixtureChart(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "keyless")
	files := map[string]string{
		"Chart.yaml":          "apiVersion: v2\nname: keyless\nversion: 0.0.0\nappVersion: v0.0.0\n",
		"values.yaml":         "image:\n  repository: ghcr.io/keyless-cd/keyless\n  tag: \"\"\n  digest: \"\"\n",
		"templates/note.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: keyless}\ndata: {image: {{ .Values.image.digest | quote }}}\n",
	}
	for n, data := range files {
		p := filepath.Join(dir, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// verifyChecksums checks every line of checksums.txt, in Go and with
// sha256sum -c where it exists, and that it lists every file beside it.
func verifyChecksums(t *testing.T, dist string) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(dist, ChecksumsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	sums := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, file, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(sum) != 64 {
			t.Fatalf("checksums.txt line %q: want SHA256  FILE", sc.Text())
		}
		got, err := fileSHA256(filepath.Join(dist, file))
		if err != nil || got != sum {
			t.Errorf("%s: sha256 %s, checksums.txt says %s (%v)", file, got, sum, err)
		}
		sums[file] = sum
	}
	entries, _ := os.ReadDir(dist)
	for _, e := range entries {
		if _, ok := sums[e.Name()]; e.Type().IsRegular() && e.Name() != ChecksumsFile && !ok {
			t.Errorf("checksums.txt does not list %s", e.Name())
		}
	}
	if _, err := exec.LookPath("sha256sum"); err == nil {
		cmd := exec.CommandContext(t.Context(), "sha256sum", "-c", ChecksumsFile)
		cmd.Dir = dist
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("sha256sum -c checksums.txt: %v\n%s", err, out)
		}
	}
	return sums
}

// extract returns the one file of a release archive, checking it is
// keyless, executable, and alone.
func extract(t *testing.T, archive string) string {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	out := filepath.Join(t.TempDir(), "keyless")
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Name != "keyless" || h.Mode != 0o755 {
			continue
		}
		w, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY, 0o700)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(w, tr); err != nil { //nolint:gosec // our own archive
			t.Fatal(err)
		}
		_ = w.Close()
	}
	if !slices.Equal(names, []string{"keyless"}) {
		t.Fatalf("%s holds %v, want only keyless (mode 0755)", archive, names)
	}
	return out
}

// checkSBOM: the SBOM is CycloneDX JSON naming keyless at v, and lists
// every module the binary's build information names, at its version.
func checkSBOM(t *testing.T, path, bin, v string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var bom struct {
		BOMFormat string `json:"bomFormat"`
		Metadata  struct {
			Component struct{ Name, Version string } `json:"component"`
		} `json:"metadata"`
		Components []struct{ Name, Version string } `json:"components"`
	}
	if err := json.Unmarshal(b, &bom); err != nil {
		t.Fatal(err)
	}
	if bom.BOMFormat != "CycloneDX" || bom.Metadata.Component.Name != "github.com/keyless-cd/keyless" || bom.Metadata.Component.Version != v {
		t.Errorf("SBOM: format %q, component %+v", bom.BOMFormat, bom.Metadata.Component)
	}
	listed := map[string]string{}
	for _, c := range bom.Components {
		listed[c.Name] = c.Version
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Deps) < 100 {
		t.Fatalf("the binary's build information lists %d modules", len(info.Deps))
	}
	for _, d := range info.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		if listed[d.Path] != d.Version {
			t.Errorf("SBOM lists %s at %q, the binary has %s", d.Path, listed[d.Path], d.Version)
		}
	}
	for _, want := range []string{"k8s.io/client-go", "helm.sh/helm/v4", "github.com/google/go-containerregistry"} {
		if listed[want] == "" {
			t.Errorf("SBOM does not list %s", want)
		}
	}
}

// checkChart: the packaged chart has the release's version and its values
// pin the release image's digest.
func checkChart(t *testing.T, archive, v, image string) {
	t.Helper()
	c, err := loader.LoadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	if c.Metadata.Version != strings.TrimPrefix(v, "v") || c.Metadata.AppVersion != v {
		t.Errorf("chart version %s appVersion %s, want %s", c.Metadata.Version, c.Metadata.AppVersion, v)
	}
	_, digest, _ := strings.Cut(image, "@")
	if img, _ := c.Values["image"].(map[string]any); img["digest"] != digest {
		t.Errorf("chart values image.digest = %v, want %s", img["digest"], digest)
	}
}

// checkPushedChart pulls the chart back with Helm's registry client: the
// registry serves what chart.txt recorded, the same bytes as dist's.
func checkPushedChart(t *testing.T, host, dist, pushed string) {
	t.Helper()
	want := "oci://" + host + "/keyless-cd/charts/keyless:0.0.0-releasetest@sha256:"
	if !strings.HasPrefix(pushed, want) {
		t.Fatalf("chart pushed as %q, want %s…", pushed, want)
	}
	recorded, err := os.ReadFile(filepath.Join(dist, ChartFile))
	if err != nil || strings.TrimSpace(string(recorded)) != pushed {
		t.Errorf("chart.txt = %q (%v), want %s", recorded, err, pushed)
	}
	client, err := registry.NewClient(registry.ClientOptPlainHTTP(), registry.ClientOptCredentialsFile(filepath.Join(t.TempDir(), "config.json")))
	if err != nil {
		t.Fatal(err)
	}
	res, err := client.Pull(strings.TrimPrefix(pushed, "oci://"))
	if err != nil {
		t.Fatal(err)
	}
	local, err := os.ReadFile(filepath.Join(dist, "keyless-0.0.0-releasetest.tgz"))
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Chart.Data) != string(local) || "sha256:"+strings.TrimPrefix(res.Manifest.Digest, "sha256:") != pushed[strings.LastIndex(pushed, "@")+1:] {
		t.Errorf("the registry serves chart %s (%d bytes), pushed %s (%d bytes)", res.Manifest.Digest, len(res.Chart.Data), pushed, len(local))
	}
}

// TestPublishWithoutImage: a release built for darwin only has no image;
// publishing it says so instead of asking for a build that happened.
func TestPublishWithoutImage(t *testing.T) {
	dist := t.TempDir()
	if err := os.WriteFile(filepath.Join(dist, ChecksumsFile), []byte("0000  keyless-darwin-arm64.tar.gz\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Publish(t.Context(), Options{Module: moduleRoot(t), Version: "v1.2.3", Dist: dist, Registry: "127.0.0.1:1/keyless-cd"})
	if !errors.Is(err, ErrNoImage) || !strings.Contains(err.Error(), "without a linux platform") {
		t.Fatalf("Publish of a darwin-only release: %v", err)
	}
	_, err = Publish(t.Context(), Options{Module: moduleRoot(t), Version: "v1.2.3", Dist: t.TempDir(), Registry: "127.0.0.1:1/keyless-cd"})
	if errors.Is(err, ErrNoImage) || err == nil || !strings.Contains(err.Error(), "run make release VERSION=v1.2.3 first") {
		t.Fatalf("Publish of nothing built: %v", err)
	}
}

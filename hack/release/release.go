package main

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"sigs.k8s.io/yaml"

	"github.com/keyless-cd/keyless/hack/internal/gobuild"
	"github.com/keyless-cd/keyless/internal/version"
)

// The release's fixed names: the interface CI, docs/install.md and the
// examples rely on.
const (
	// DefaultRegistry is where a release is published: the image as
	// REGISTRY/keyless, the chart as oci://REGISTRY/charts/keyless.
	DefaultRegistry = "ghcr.io/keyless-cd"
	// DefaultChart is the controller's Helm chart, relative to the module.
	DefaultChart = "charts/keyless"
	// ImageName is the image's repository under the registry.
	ImageName = "keyless"
	// ChartsPath is the charts' repository under the registry.
	ChartsPath = "charts"
	// ChecksumsFile lists the sha256 of every other file in dist, in the
	// format sha256sum -c reads.
	ChecksumsFile = "checksums.txt"
	// ImageFile holds the image's reference by digest:
	// REGISTRY/keyless:VERSION@sha256:….
	ImageFile = "image.txt"
	// ImageLayout is the folder of the image's OCI layout.
	ImageLayout = "image"
	// ChartFile holds the pushed chart's reference by digest (publish only).
	ChartFile = "chart.txt"
	// UserEnv and PasswordEnv are the registry credentials for publishing;
	// without them the Docker and Helm credential files are used.
	UserEnv     = "RELEASE_REGISTRY_USER"
	PasswordEnv = "RELEASE_REGISTRY_PASSWORD"
)

// DefaultPlatforms are the platforms of a release's binaries.
var DefaultPlatforms = []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64"}

// Options configure Build and Publish. Relative paths are relative to Module.
type Options struct {
	// Module is the keyless module's folder. Default ".".
	Module string
	// Version is the release, vX.Y.Z[-pre] (version.IsRelease). Required.
	Version string
	// Dist is the release's folder. Default "dist". Build empties it.
	Dist string
	// Platforms are os/arch pairs. Default DefaultPlatforms.
	Platforms []string
	// Registry is where Publish pushes (and image.txt names). Default
	// DefaultRegistry.
	Registry string
	// Chart is the chart's folder, packaged when it holds a Chart.yaml.
	// Default DefaultChart.
	Chart string
	// SBOMTool is the cyclonedx-gomod binary. Default bin/tools/cyclonedx-gomod.
	SBOMTool string
	// Revision is the commit for the image's annotations. Default git
	// rev-parse HEAD.
	Revision string
	// Username and Password authenticate Publish to the registry; empty: the
	// Docker and Helm credential files.
	Username, Password string
	// Progress receives what is being done. Default io.Discard.
	Progress io.Writer
}

func (o *Options) defaults(ctx context.Context) error {
	if o.Module == "" {
		o.Module = "."
	}
	if o.Dist == "" {
		o.Dist = "dist"
	}
	if len(o.Platforms) == 0 {
		o.Platforms = DefaultPlatforms
	}
	if o.Registry == "" {
		o.Registry = DefaultRegistry
	}
	o.Registry = strings.TrimSuffix(o.Registry, "/")
	if o.Chart == "" {
		o.Chart = DefaultChart
	}
	if o.SBOMTool == "" {
		o.SBOMTool = "bin/tools/cyclonedx-gomod"
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Revision == "" {
		o.Revision = gobuild.Git(ctx, o.Module, "rev-parse", "HEAD")
	}
	if !version.IsRelease(o.Version) {
		return fmt.Errorf("version %q is not a release: give VERSION=vX.Y.Z (or vX.Y.Z-rc.N), the tag being released", o.Version)
	}
	return nil
}

// path resolves p against the module.
func (o *Options) path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(o.Module, p)
}

// imageRepo is REGISTRY/keyless.
func (o *Options) imageRepo() string { return o.Registry + "/" + ImageName }

// Manifest is what Build wrote into Dist (file names relative to it).
type Manifest struct {
	// Archives are keyless-OS-ARCH.tar.gz, one per platform.
	Archives []string
	// SBOMs are keyless-OS-ARCH.cdx.json, one per platform.
	SBOMs []string
	// Image is REGISTRY/keyless:VERSION@sha256:… (also in image.txt); empty
	// when no linux platform was built.
	Image string
	// Chart is keyless-X.Y.Z.tgz; empty without a chart folder.
	Chart string
}

// ArchiveName is the archive of a platform's binary.
func ArchiveName(platform string) string {
	return "keyless-" + strings.ReplaceAll(platform, "/", "-") + ".tar.gz"
}

// SBOMName is the CycloneDX SBOM of a platform's binary.
func SBOMName(platform string) string {
	return "keyless-" + strings.ReplaceAll(platform, "/", "-") + ".cdx.json"
}

// Build writes the release into Dist: nothing is pushed.
func Build(ctx context.Context, o Options) (*Manifest, error) {
	if err := o.defaults(ctx); err != nil {
		return nil, err
	}
	dist := o.path(o.Dist)
	if err := emptyDist(dist); err != nil {
		return nil, err
	}
	created := gobuild.SourceDate(ctx, o.Module)
	work := filepath.Join(dist, ".build")
	defer func() { _ = os.RemoveAll(work) }()
	m := &Manifest{}
	linux := map[string]string{}
	var linuxPlatforms []string
	for _, p := range o.Platforms {
		p = strings.TrimSpace(p)
		goos, goarch, ok := strings.Cut(p, "/")
		if !ok || (goos != "linux" && goos != "darwin") || goarch == "" {
			return nil, fmt.Errorf("platform %q: want linux/ARCH or darwin/ARCH", p)
		}
		_, _ = fmt.Fprintf(o.Progress, "building keyless %s for %s ...\n", o.Version, p)
		bin := filepath.Join(work, goos+"-"+goarch, "keyless")
		if err := gobuild.Keyless(ctx, o.Module, goos, goarch, o.Version, bin); err != nil {
			return nil, err
		}
		if err := writeArchive(bin, filepath.Join(dist, ArchiveName(p)), created); err != nil {
			return nil, fmt.Errorf("archive for %s: %w", p, err)
		}
		if err := sbom(ctx, o, bin, filepath.Join(dist, SBOMName(p))); err != nil {
			return nil, err
		}
		m.Archives, m.SBOMs = append(m.Archives, ArchiveName(p)), append(m.SBOMs, SBOMName(p))
		if goos == "linux" {
			linux[p] = bin
			linuxPlatforms = append(linuxPlatforms, p)
		}
	}
	if len(linuxPlatforms) > 0 {
		_, _ = fmt.Fprintf(o.Progress, "building the image for %s ...\n", strings.Join(linuxPlatforms, ", "))
		digest, err := buildImage(ctx, o, linuxPlatforms, linux, filepath.Join(dist, ImageLayout), created)
		if err != nil {
			return nil, err
		}
		m.Image = o.imageRepo() + ":" + o.Version + "@" + digest
		if err := os.WriteFile(filepath.Join(dist, ImageFile), []byte(m.Image+"\n"), 0o644); err != nil { //nolint:gosec // a public release file
			return nil, err
		}
	}
	chart, err := packageChart(o, dist, created, m.Image)
	if err != nil {
		return nil, err
	}
	m.Chart = chart
	if err := os.RemoveAll(work); err != nil {
		return nil, err
	}
	return m, writeChecksums(dist)
}

// emptyDist removes a previous release from dist, refusing a folder that
// looks like a source tree.
func emptyDist(dist string) error {
	for _, marker := range []string{"go.mod", ".git"} {
		if _, err := os.Stat(filepath.Join(dist, marker)); err == nil {
			return fmt.Errorf("--dist %s holds %s: give an output folder (make release uses dist/)", dist, marker)
		}
	}
	if err := os.RemoveAll(dist); err != nil {
		return err
	}
	return os.MkdirAll(dist, 0o755)
}

// writeArchive writes bin as the one file "keyless" (mode 0755, owner 0,
// the commit's time) of a gzipped tar at out: the same bytes every time.
func writeArchive(bin, out string, created time.Time) (err error) {
	in, err := os.Open(bin)
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	zw := gzip.NewWriter(bw)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "keyless", Mode: 0o755, Size: st.Size(),
		ModTime: created, Format: tar.FormatUSTAR}); err != nil {
		return err
	}
	if _, err := io.Copy(tw, in); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// sbom writes the CycloneDX SBOM of bin (every module linked into it, from
// its build information) without a serial number or timestamp, so it is
// reproducible.
func sbom(ctx context.Context, o Options, bin, out string) error {
	cmd := exec.CommandContext(ctx, o.path(o.SBOMTool), "bin", "-json", "-noserial", "-notimestamp",
		"-version", o.Version, "-output", out, bin)
	cmd.Dir = o.Module
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("SBOM of %s with %s (make builds it): %w\n%s", bin, o.SBOMTool, err, b)
	}
	return nil
}

// buildImage runs hack/image with the release's linux binaries and returns
// the index's digest.
func buildImage(ctx context.Context, o Options, platforms []string, bins map[string]string, out string, created time.Time) (string, error) {
	var binaries []string
	for _, p := range platforms {
		binaries = append(binaries, p+"="+bins[p])
	}
	cmd := exec.CommandContext(ctx, "go", "run", "./hack/image", "--version", o.Version, "--revision", o.Revision,
		"--platforms", strings.Join(platforms, ","), "--binaries", strings.Join(binaries, ","), "--out", out)
	cmd.Dir = o.Module
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH="+strconv.FormatInt(created.Unix(), 10))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("hack/image: %w\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	_, digest, ok := strings.Cut(lines[len(lines)-1], "@")
	if !ok || !strings.HasPrefix(digest, "sha256:") {
		return "", fmt.Errorf("hack/image printed %q, want DIR@sha256:…", b)
	}
	return digest, nil
}

// packageChart packages the chart folder, when there is one, as helm
// package --version X.Y.Z --app-version vX.Y.Z does, with the commit's
// time on every file so the archive is reproducible; with an image, its
// values' image.digest defaults to the release image's digest.
func packageChart(o Options, dist string, created time.Time, image string) (string, error) {
	dir := o.path(o.Chart)
	if _, err := os.Stat(filepath.Join(dir, chartutil.ChartfileName)); errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	c, err := loader.LoadDir(dir)
	if err != nil {
		return "", fmt.Errorf("chart %s: %w", o.Chart, err)
	}
	c.Metadata.Version = strings.TrimPrefix(o.Version, "v")
	c.Metadata.AppVersion = o.Version
	if _, digest, ok := strings.Cut(image, "@"); ok {
		if err := pinChartImage(c, digest); err != nil {
			return "", fmt.Errorf("chart %s: %w", o.Chart, err)
		}
	}
	c.StampModTimes(created)
	path, err := chartutil.Save(c, dist)
	if err != nil {
		return "", fmt.Errorf("packaging chart %s: %w", o.Chart, err)
	}
	return filepath.Base(path), nil
}

// chartDigest is the line of the chart's values.yaml (hack/chart writes it)
// that leaves the image unpinned.
var chartDigest = regexp.MustCompile(`(?m)^  digest: ""$`)

// pinChartImage sets the default of values.yaml's image.digest to digest,
// in the file (which helm package writes as it is) and in the parsed values.
func pinChartImage(c *chart.Chart, digest string) error {
	for _, f := range c.Raw {
		if f.Name != chartutil.ValuesfileName {
			continue
		}
		if n := len(chartDigest.FindAllIndex(f.Data, -1)); n != 1 {
			return fmt.Errorf("values.yaml has %d lines `  digest: \"\"` (image.digest), want 1", n)
		}
		f.Data = chartDigest.ReplaceAll(f.Data, []byte(`  digest: "`+digest+`"`))
		var values map[string]any
		if err := yaml.Unmarshal(f.Data, &values); err != nil {
			return err
		}
		image, _ := values["image"].(map[string]any)
		if image["digest"] != digest {
			return fmt.Errorf("values.yaml: image.digest is %v after pinning, want %s", image["digest"], digest)
		}
		c.Values = values
		return nil
	}
	return errors.New("no values.yaml")
}

// writeChecksums writes the sha256 of every file in dist, by name, as
// sha256sum prints them.
func writeChecksums(dist string) error {
	entries, err := os.ReadDir(dist)
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, e := range entries {
		if !e.Type().IsRegular() || e.Name() == ChecksumsFile {
			continue
		}
		sum, err := fileSHA256(filepath.Join(dist, e.Name()))
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s  %s\n", sum, e.Name())
	}
	return os.WriteFile(filepath.Join(dist, ChecksumsFile), []byte(b.String()), 0o644) //nolint:gosec // a public release file
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

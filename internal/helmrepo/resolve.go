package helmrepo

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	chart "helm.sh/helm/v4/pkg/chart/v2"
	repo "helm.sh/helm/v4/pkg/repo/v1"
)

// ChartRef names a chart to resolve.
type ChartRef struct {
	// RepoURL is an https:// Helm repository (its index.yaml beside it) or
	// an oci://registry/path (the chart is oci://registry/path/Chart).
	RepoURL string
	// Chart is the chart's name.
	Chart string
	// Version is an exact version or a semver range (Masterminds/semver,
	// as Helm); "" is the latest stable version.
	Version string
}

func (r ChartRef) String() string {
	v := r.Version
	if v == "" {
		v = "latest"
	}
	return fmt.Sprintf("chart %s %s from %s", r.Chart, v, redact(r.RepoURL))
}

// Resolved is a chart version pinned by digest.
type Resolved struct {
	RepoURL, Chart string
	// Version is the chart's exact version.
	Version string
	// Digest is "sha256:<hex>": of the .tgz (a Helm repository: the
	// index's digest, verified on download) or of the OCI manifest.
	Digest string
	// URL is where the chart is downloaded from: the archive's URL, or
	// oci://registry/path/chart:tag.
	URL string
}

func (r Resolved) String() string {
	return fmt.Sprintf("chart %s %s from %s", r.Chart, r.Version, redact(r.RepoURL))
}

// Resolve pins ref to one version and digest, with creds (nil: anonymous).
// A Helm repository's index is shared between callers for IndexTTL.
func (f *Fetcher) Resolve(ctx context.Context, ref ChartRef, creds *Credentials) (Resolved, error) {
	ctx, cancel := f.withTimeout(ctx)
	defer cancel()
	oci, err := f.repoKind(ref.RepoURL)
	if err != nil {
		return Resolved{}, err
	}
	if !validChartName(ref.Chart) {
		return Resolved{}, fmt.Errorf("%s: %q is not a chart name: %w", ref, ref.Chart, ErrUnsupported)
	}
	if oci {
		return f.resolveOCI(ctx, ref, creds)
	}
	return f.resolveHTTP(ctx, ref, creds)
}

// validChartName refuses names that could leave a URL path or OCI
// repository.
func validChartName(name string) bool {
	return name != "" && name != "." && name != ".." && len(name) <= 250 &&
		!strings.ContainsAny(name, "/\\?#@:% \t\r\n")
}

func (f *Fetcher) resolveHTTP(ctx context.Context, ref ChartRef, creds *Credentials) (Resolved, error) {
	e, err := f.index(ctx, ref.RepoURL, creds)
	if err != nil {
		return Resolved{}, fmt.Errorf("%s: %w", ref, err)
	}
	tvs, err := e.versions(ref.Chart)
	if err != nil {
		return Resolved{}, fmt.Errorf("%s: %w", ref, err)
	}
	if len(tvs) == 0 {
		return Resolved{}, fmt.Errorf("%s: the repository's index has no chart %q; check spec.source.chart: %w", ref, ref.Chart, ErrNotFound)
	}
	cvs := make(repo.ChartVersions, 0, len(tvs))
	for _, tv := range tvs {
		cvs = append(cvs, &repo.ChartVersion{Metadata: &chart.Metadata{Name: ref.Chart, Version: tv.Version}, URLs: tv.URLs, Digest: tv.Digest})
	}
	idx := repo.IndexFile{Entries: map[string]repo.ChartVersions{ref.Chart: cvs}}
	cv, err := idx.Get(ref.Chart, ref.Version)
	if err != nil {
		return Resolved{}, fmt.Errorf("%s: no version matches in the repository's index (newest %s): %w", ref, tvs[0].Version, ErrNotFound)
	}
	if !hexDigest.MatchString(cv.Digest) {
		return Resolved{}, fmt.Errorf("%s: version %s has no sha256 digest in the index (%q); keyless verifies every chart: regenerate the index with `helm repo index`: %w",
			ref, cv.Version, cv.Digest, ErrDigest)
	}
	if len(cv.URLs) == 0 {
		return Resolved{}, fmt.Errorf("%s: version %s has no URL in the index: %w", ref, cv.Version, ErrNotFound)
	}
	u, err := repo.ResolveReferenceURL(ref.RepoURL, cv.URLs[0])
	if err != nil {
		return Resolved{}, fmt.Errorf("%s: version %s: %w", ref, cv.Version, err)
	}
	if err := f.checkChartURL(u); err != nil {
		return Resolved{}, fmt.Errorf("%s: version %s: %w", ref, cv.Version, err)
	}
	return Resolved{RepoURL: ref.RepoURL, Chart: ref.Chart, Version: cv.Version, Digest: "sha256:" + strings.ToLower(cv.Digest), URL: u}, nil
}

var hexDigest = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

// checkChartURL refuses a chart URL keyless does not download from.
func (f *Fetcher) checkChartURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("chart URL %q is not an absolute URL: %w", redact(raw), ErrUnsupported)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && f.opts.AllowInsecureHTTP:
	case u.Scheme == "http":
		return fmt.Errorf("chart URL %s: %w: use https:// (or --allow-insecure-http, for loopback tests only)", redact(raw), ErrInsecure)
	default:
		return fmt.Errorf("chart URL %s: scheme %q is not https://: %w", redact(raw), u.Scheme, ErrUnsupported)
	}
	return nil
}

// Fetch returns the path of r's chart archive in the cache, downloading and
// verifying it when missing. The file is named by r.Digest, written
// (0600) only once verified; it must not be modified.
func (f *Fetcher) Fetch(ctx context.Context, r Resolved, creds *Credentials) (string, error) {
	ctx, cancel := f.withTimeout(ctx)
	defer cancel()
	algo, hexSum, ok := strings.Cut(r.Digest, ":")
	if !ok || algo != "sha256" || !hexDigest.MatchString(hexSum) {
		return "", fmt.Errorf("%s: digest %q is not sha256:<hex>: %w", r, r.Digest, ErrDigest)
	}
	path := filepath.Join(f.opts.CacheDir, chartsDir, "sha256-"+strings.ToLower(hexSum)+".tgz")
	if _, err := os.Stat(path); err == nil {
		now := time.Now()
		_ = os.Chtimes(path, now, now) // in use: Retain keeps it
		return path, nil
	}
	mu, _ := f.chartLocks.LoadOrStore(path, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	oci, err := f.repoKind(r.RepoURL)
	if err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(filepath.Join(f.opts.CacheDir, chartsDir), ".download-*")
	if err != nil {
		return "", fmt.Errorf("%s: %w", r, err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if oci {
		err = f.fetchOCI(ctx, r, creds, tmp)
	} else {
		err = f.fetchHTTP(ctx, r, creds, tmp)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	if err := f.checkArchive(r, tmp.Name()); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("%s: %w", r, err)
	}
	return path, nil
}

// fetchHTTP downloads r.URL into w and verifies its digest.
func (f *Fetcher) fetchHTTP(ctx context.Context, r Resolved, creds *Credentials, w io.Writer) error {
	if err := f.checkChartURL(r.URL); err != nil {
		return fmt.Errorf("%s: %w", r, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.URL, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", r, err)
	}
	authorize(req, creds) // only when the chart's host is bound (Helm without --pass-credentials)
	resp, err := f.client(creds).Do(req)
	if err != nil {
		return fmt.Errorf("%s: downloading: %w", r, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s: downloading: %w", r, &StatusError{URL: redact(r.URL), Code: resp.StatusCode})
	}
	return f.copyVerified(r.String(), resp.Body, resp.ContentLength, r.Digest, w)
}

// copyVerified copies at most MaxChartBytes of body into w and checks
// its sha256 against want ("sha256:<hex>").
func (f *Fetcher) copyVerified(what string, body io.Reader, size int64, want string, w io.Writer) error {
	limit := f.opts.Limits.MaxChartBytes
	tooBig := &LimitError{Limit: "MaxChartBytes", Where: what, Detail: fmt.Sprintf("the chart archive is larger than %d bytes", limit)}
	if size > limit {
		return tooBig
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(body, limit+1))
	if err != nil {
		return fmt.Errorf("%s: downloading: %w", what, err)
	}
	if n > limit {
		return tooBig
	}
	if got := sum(h); got != strings.ToLower(want) {
		return &DigestError{What: what, Want: want, Got: got}
	}
	return nil
}

func sum(h hash.Hash) string { return "sha256:" + hex.EncodeToString(h.Sum(nil)) }

// checkArchive bounds a chart archive's uncompressed size and entries.
func (f *Fetcher) checkArchive(r Resolved, path string) error {
	fh, err := os.Open(path)
	if err != nil {
		return err
	}
	defer func() { _ = fh.Close() }()
	return checkArchive(r.String(), fh, f.opts.Limits)
}

func checkArchive(what string, rd io.Reader, l Limits) error {
	gz, err := gzip.NewReader(rd)
	if err != nil {
		return fmt.Errorf("%s: not a chart archive (.tgz): %w", what, err)
	}
	tr := tar.NewReader(gz)
	var files int
	var total int64
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: not a chart archive (.tgz): %w", what, err)
		}
		if files++; files > l.MaxChartFiles {
			return &LimitError{Limit: "MaxChartFiles", Where: what, Detail: fmt.Sprintf("the chart archive holds more than %d entries", l.MaxChartFiles)}
		}
		n, err := io.Copy(io.Discard, io.LimitReader(tr, l.MaxChartUncompressedBytes-total+1))
		if err != nil {
			return fmt.Errorf("%s: reading %s in the chart archive: %w", what, hdr.Name, err)
		}
		if total += n; total > l.MaxChartUncompressedBytes {
			return &LimitError{Limit: "MaxChartUncompressedBytes", Where: what, Detail: fmt.Sprintf("the chart archive unpacks to more than %d bytes", l.MaxChartUncompressedBytes)}
		}
	}
}

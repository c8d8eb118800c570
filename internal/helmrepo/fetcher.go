package helmrepo

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/keyless-cd/keyless/internal/egress"
)

// Options configure New.
type Options struct {
	// CacheDir holds the downloaded charts (by digest) and the compact
	// index tables; created 0700, files 0600. Required.
	CacheDir string
	// AllowInsecureHTTP lets http:// repositories and plain-HTTP registries
	// be used (loopback tests and the demo only: --allow-insecure-http).
	// Default false: every request, redirect and token fetch is https.
	AllowInsecureHTTP bool
	// Limits bound what a repository may send. Zero fields take the
	// defaults documented on Limits.
	Limits Limits
	// Timeout bounds each Resolve, Fetch and Dependencies call (on top of
	// the caller's context) and each request. Default 2m.
	Timeout time.Duration
	// IndexTTL is how long a repository's index is used before it is
	// revalidated (If-None-Match / If-Modified-Since). Default 5m.
	IndexTTL time.Duration
	// Egress is the address policy of every connection (--egress-deny-cidrs,
	// --egress-allow-cidrs; AllowLoopback for tests). Its Timeout is
	// replaced by Timeout.
	Egress egress.Options
	// RootCAs are the CAs trusted for https repositories and registries.
	// Default nil: the system's.
	RootCAs *x509.CertPool
}

// Limits bound what a repository or registry may send.
type Limits struct {
	// MaxIndexBytes bounds an index.yaml. Default 64 MiB (30 MB indexes
	// are normal for large repositories).
	MaxIndexBytes int64
	// MaxChartBytes bounds a chart archive (compressed). Default 20 MiB.
	MaxChartBytes int64
	// MaxChartUncompressedBytes bounds the sum of a chart archive's file
	// sizes. Default 100 MiB (Helm's own loader's limit).
	MaxChartUncompressedBytes int64
	// MaxChartFiles bounds the entries of a chart archive. Default 10000.
	MaxChartFiles int
	// MaxManifestBytes bounds an OCI manifest. Default 4 MiB.
	MaxManifestBytes int64
	// MaxTags bounds the tags of an OCI repository read to resolve a
	// range. Default 10000.
	MaxTags int
	// MaxRedirects bounds the redirects of one request. Default 5.
	MaxRedirects int
	// MaxDependencies bounds the dependencies of one chart. Default 100.
	MaxDependencies int
}

// Fetcher resolves and fetches charts from Helm repositories and OCI
// registries. It is safe for concurrent use; one Fetcher serves every
// Application of a controller, sharing its index cache and chart cache.
type Fetcher struct {
	opts      Options
	transport *http.Transport

	mu      sync.Mutex
	indexes map[string]map[string]*indexEntry // repo URL → credential fingerprint → index
	flight  singleflight.Group
	// chartLocks serialises writes of one chart archive.
	chartLocks sync.Map
	now        func() time.Time
}

func (o *Options) defaults() error {
	if o.CacheDir == "" {
		return errors.New("helmrepo: Options.CacheDir is required")
	}
	l := &o.Limits
	setDefault(&l.MaxIndexBytes, 64<<20)
	setDefault(&l.MaxChartBytes, 20<<20)
	setDefault(&l.MaxChartUncompressedBytes, 100<<20)
	setDefault(&l.MaxChartFiles, 10000)
	setDefault(&l.MaxManifestBytes, 4<<20)
	setDefault(&l.MaxTags, 10000)
	setDefault(&l.MaxRedirects, 5)
	setDefault(&l.MaxDependencies, 100)
	setDefault(&o.Timeout, 2*time.Minute)
	setDefault(&o.IndexTTL, 5*time.Minute)
	return nil
}

func setDefault[T int | int64 | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// New returns a Fetcher; it creates CacheDir (0700).
func New(opts Options) (*Fetcher, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(opts.CacheDir)
	if err != nil {
		return nil, fmt.Errorf("helmrepo: cache folder: %w", err)
	}
	opts.CacheDir = abs
	for _, d := range []string{abs, filepath.Join(abs, chartsDir), filepath.Join(abs, indexDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("helmrepo: cache folder: %w", err)
		}
	}
	eo := opts.Egress
	eo.Timeout = opts.Timeout
	tr, ok := egress.NewClient(eo).Transport.(*http.Transport)
	if !ok {
		return nil, errors.New("helmrepo: the egress client's transport is not an *http.Transport")
	}
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: opts.RootCAs}
	tr.MaxIdleConnsPerHost = 4
	return &Fetcher{opts: opts, transport: tr, indexes: map[string]map[string]*indexEntry{}, now: time.Now}, nil
}

// Cache folders under CacheDir.
const (
	chartsDir = "charts"
	indexDir  = "index"
)

// client returns the HTTP client of one operation with creds: every
// request (redirects and token fetches included) goes through a
// boundTransport, redirects are bounded.
func (f *Fetcher) client(creds *Credentials) *http.Client {
	return &http.Client{
		Transport: &boundTransport{base: f.transport, creds: creds, allowInsecure: f.opts.AllowInsecureHTTP},
		Timeout:   f.opts.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > f.opts.Limits.MaxRedirects {
				return &LimitError{Limit: "MaxRedirects", Where: redact(via[0].URL.String()),
					Detail: fmt.Sprintf("more than %d redirects (last to %s)", f.opts.Limits.MaxRedirects, redact(req.URL.String()))}
			}
			return nil
		},
	}
}

// boundTransport is the one place deciding what a request may carry: it
// refuses plain http:// unless allowed and drops an Authorization header
// (set by the caller, by net/http on a redirect, or by the OCI client for
// a token service) for a host creds are not bound to.
type boundTransport struct {
	base          http.RoundTripper
	creds         *Credentials
	allowInsecure bool
}

func (t *boundTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	switch {
	case req.URL.Scheme == "https":
	case req.URL.Scheme == "http" && t.allowInsecure:
	default:
		return nil, fmt.Errorf("%s: %w: use https:// (or --allow-insecure-http, for loopback tests only)", redact(req.URL.String()), ErrInsecure)
	}
	if req.Header.Get("Authorization") != "" && !t.creds.allows(req.URL.Host) {
		req = req.Clone(req.Context())
		req.Header.Del("Authorization")
	}
	return t.base.RoundTrip(req)
}

// authorize sets the credential's header on req when its host is bound.
func authorize(req *http.Request, creds *Credentials) {
	if !creds.allows(req.URL.Host) {
		return
	}
	switch {
	case creds.Token != "":
		req.Header.Set("Authorization", "Bearer "+creds.Token)
	case creds.Username != "" || creds.Password != "":
		req.SetBasicAuth(creds.Username, creds.Password)
	}
}

// withTimeout bounds one public call.
func (f *Fetcher) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, f.opts.Timeout)
}

// repoKind tells an OCI registry from a Helm repository and refuses what
// keyless cannot resolve.
func (f *Fetcher) repoKind(repoURL string) (oci bool, err error) {
	switch {
	case strings.HasPrefix(repoURL, "@"), strings.HasPrefix(repoURL, "alias:"):
		return false, fmt.Errorf("repository %q is a Helm repository name (from a repositories.yaml keyless does not have); write the repository's URL (https://… or oci://…) instead: %w", repoURL, ErrUnsupported)
	}
	u, err := url.Parse(repoURL)
	if err != nil || u.Host == "" {
		return false, fmt.Errorf("repository %q is not a URL (https://… or oci://…): %w", redact(repoURL), ErrUnsupported)
	}
	if u.User != nil {
		return false, fmt.Errorf("repository %s carries credentials in its URL; put them in a Secret labelled keyless.dev/credential: helm: %w", redact(repoURL), ErrUnsupported)
	}
	switch u.Scheme {
	case "oci":
		return true, nil
	case "https":
		return false, nil
	case "http":
		if !f.opts.AllowInsecureHTTP {
			return false, fmt.Errorf("repository %s: %w: use https:// (or --allow-insecure-http, for loopback tests only)", repoURL, ErrInsecure)
		}
		return false, nil
	}
	return false, fmt.Errorf("repository %s: scheme %q is not https:// nor oci://: %w", redact(repoURL), u.Scheme, ErrUnsupported)
}

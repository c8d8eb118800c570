package helmrepo

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/registry"
	repo "helm.sh/helm/v4/pkg/repo/v1"

	"github.com/keyless-cd/keyless/internal/egress"
)

// packageChart builds testdata/charts/<name> at version into dir with
// Helm's own packager and returns the archive's path. A name "as:src"
// packages testdata/charts/src under the name as.
func packageChart(t *testing.T, name, version, dir string) string {
	t.Helper()
	name, src, ok := strings.Cut(name, ":")
	if !ok {
		src = name
	}
	ch, err := loader.LoadDir(filepath.Join("testdata", "charts", src))
	if err != nil {
		t.Fatal(err)
	}
	ch.Metadata.Name = name
	ch.Metadata.Version = version
	p, err := chartutil.Save(ch, dir)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func fileDigest(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("sha256:%x", sha256.Sum256(b))
}

// helmRepo is a static Helm repository over HTTPS: index.yaml and .tgz
// files from a folder, served by http.FileServer (as GitHub Pages serve
// them), optionally behind basic auth. It records what arrived.
type helmRepo struct {
	t    *testing.T
	dir  string
	srv  *httptest.Server
	user string
	pass string
	// indexDelay holds each index.yaml answer (to make callers overlap).
	indexDelay time.Duration
	// handler, when set, answers instead of the files.
	handler http.HandlerFunc

	mu       sync.Mutex
	requests map[string]int
	auths    []string // Authorization headers, "" when none
	notMod   int      // 304 answers to index.yaml
}

func newHelmRepo(t *testing.T, user, pass string) *helmRepo {
	t.Helper()
	r := &helmRepo{t: t, dir: t.TempDir(), user: user, pass: pass, requests: map[string]int{}}
	files := http.FileServer(http.Dir(r.dir))
	r.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.requests[req.URL.Path]++
		r.auths = append(r.auths, req.Header.Get("Authorization"))
		h, delay := r.handler, r.indexDelay
		r.mu.Unlock()
		if h != nil {
			h(w, req)
			return
		}
		if r.user != "" {
			if u, p, ok := req.BasicAuth(); !ok || u != r.user || p != r.pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="charts"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
		}
		if req.URL.Path == "/index.yaml" {
			time.Sleep(delay)
			rec := &statusRecorder{ResponseWriter: w}
			files.ServeHTTP(rec, req)
			if rec.code == http.StatusNotModified {
				r.mu.Lock()
				r.notMod++
				r.mu.Unlock()
			}
			return
		}
		files.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// host is the server's host:port.
func (r *helmRepo) host() string { return strings.TrimPrefix(r.srv.URL, "https://") }

// add packages testdata/charts/name at each version into the repository.
func (r *helmRepo) add(name string, versions ...string) {
	r.t.Helper()
	for _, v := range versions {
		packageChart(r.t, name, v, r.dir)
	}
}

// index writes index.yaml for the archives in the folder with Helm's own
// indexer, chart URLs under baseURL ("" = relative, as `helm repo index`
// without --url writes them). The file's time moves forward a second so
// If-Modified-Since sees the change.
func (r *helmRepo) index(baseURL string) {
	r.t.Helper()
	idx, err := repo.IndexDirectory(r.dir, baseURL)
	if err != nil {
		r.t.Fatal(err)
	}
	idx.SortEntries()
	p := filepath.Join(r.dir, "index.yaml")
	var next time.Time
	if fi, err := os.Stat(p); err == nil {
		next = fi.ModTime().Add(2 * time.Second)
	}
	if err := idx.WriteFile(p, 0o644); err != nil {
		r.t.Fatal(err)
	}
	if !next.IsZero() {
		if err := os.Chtimes(p, next, next); err != nil {
			r.t.Fatal(err)
		}
	}
}

func (r *helmRepo) count(path string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests[path]
}

func (r *helmRepo) authorizations() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.auths...)
}

// newTestFetcher returns a Fetcher trusting the given servers' (and
// extra) certificates, allowed to reach loopback.
func newTestFetcher(t *testing.T, opts Options, trust ...*x509.Certificate) *Fetcher {
	t.Helper()
	pool := x509.NewCertPool()
	for _, c := range trust {
		pool.AddCert(c)
	}
	if opts.CacheDir == "" {
		opts.CacheDir = filepath.Join(t.TempDir(), "cache")
	}
	opts.RootCAs = pool
	opts.Egress = egress.Options{AllowLoopback: true}
	f, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// selfSigned returns a self-signed ECDSA certificate for 127.0.0.1 (also a
// CA: the registry's TLS certificate and the token signer's root).
func selfSigned(t *testing.T, cn string) (*x509.Certificate, *ecdsa.PrivateKey, []byte, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageAny},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

// RegistryEnv names the registry binary (`make registry` builds
// bin/registry and `make test` sets it).
const RegistryEnv = "KEYLESS_REGISTRY"

// registryPath finds the Distribution registry binary; a test fails (not
// skips) without it, as the Gitea tests do.
func registryPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(RegistryEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s=%s: %v (run `make registry`)", RegistryEnv, p, err)
		}
		return p
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, "bin", "registry")
			if _, err := os.Stat(p); err != nil {
				t.Fatalf("no registry binary: run `make registry` (it builds bin/registry) or set %s", RegistryEnv)
			}
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no registry binary: run `make registry` or set %s", RegistryEnv)
		}
		dir = parent
	}
}

// ociRegistry is a real CNCF Distribution registry on loopback, over TLS
// with token authentication (a tokenServer), or plain HTTP without auth.
type ociRegistry struct {
	host    string // 127.0.0.1:port
	cert    *x509.Certificate
	storage string // the filesystem driver's root
	token   *tokenServer
}

const (
	registryService = "keyless-test-registry"
	tokenIssuer     = "keyless-test-token-issuer"
	registryUser    = "pusher"
	registryPass    = "push-secret"
)

// startRegistry starts bin/registry; plain makes it plain HTTP without
// auth, else TLS with token auth.
func startRegistry(t *testing.T, plain bool) *ociRegistry {
	t.Helper()
	bin := registryPath(t)
	dir := t.TempDir()
	reg := &ociRegistry{storage: filepath.Join(dir, "storage")}
	port := freePort(t)
	reg.host = fmt.Sprintf("127.0.0.1:%d", port)
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s
  secret: keyless-test
`, reg.storage, reg.host)
	scheme := "http"
	if !plain {
		scheme = "https"
		cert, _, certPEM, keyPEM := selfSigned(t, "registry")
		reg.cert = cert
		writeFile(t, filepath.Join(dir, "tls.crt"), certPEM)
		writeFile(t, filepath.Join(dir, "tls.key"), keyPEM)
		reg.token = newTokenServer(t)
		writeFile(t, filepath.Join(dir, "jwt.crt"), reg.token.certPEM)
		cfg += fmt.Sprintf(`  tls:
    certificate: %s
    key: %s
auth:
  token:
    realm: %s/token
    service: %s
    issuer: %s
    rootcertbundle: %s
`, filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), reg.token.srv.URL, registryService, tokenIssuer, filepath.Join(dir, "jwt.crt"))
	}
	writeFile(t, filepath.Join(dir, "config.yml"), []byte(cfg))
	cmd := exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))
	logf, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("registry log:\n%s", b)
		}
	})
	pool := x509.NewCertPool()
	if reg.cert != nil {
		pool.AddCert(reg.cert)
	}
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := c.Get(scheme + "://" + reg.host + "/v2/")
		if err == nil {
			_ = resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry did not start: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return reg
}

// push pushes testdata/charts/name at version to oci://host/charts/name
// with Helm's own registry client and returns the archive pushed.
func (reg *ociRegistry) push(t *testing.T, name, version string) []byte {
	t.Helper()
	p := packageChart(t, name, version, t.TempDir())
	name, _, _ = strings.Cut(name, ":")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	opts := []registry.ClientOption{registry.ClientOptCredentialsFile(filepath.Join(t.TempDir(), "config.json"))}
	if reg.cert != nil {
		pool.AddCert(reg.cert)
		pool.AddCert(reg.token.srv.Certificate())
		opts = append(opts, registry.ClientOptBasicAuth(registryUser, registryPass))
	} else {
		opts = append(opts, registry.ClientOptPlainHTTP())
	}
	opts = append(opts, registry.ClientOptHTTPClient(&http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}))
	c, err := registry.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Push(data, fmt.Sprintf("%s/charts/%s:%s", reg.host, name, version)); err != nil {
		t.Fatalf("helm push %s %s: %v", name, version, err)
	}
	return data
}

// trust returns the certificates a Fetcher needs for this registry.
func (reg *ociRegistry) trust() []*x509.Certificate {
	if reg.cert == nil {
		return nil
	}
	return []*x509.Certificate{reg.cert, reg.token.srv.Certificate()}
}

func (reg *ociRegistry) url() string { return "oci://" + reg.host + "/charts" }

// tokenServer is the Docker token protocol's authorization service: GET
// /token with basic auth → a JWT signed by a key whose certificate is the
// registry's rootcertbundle, granting what the scope asks.
type tokenServer struct {
	srv     *httptest.Server
	certPEM []byte

	mu    sync.Mutex
	auths []string
}

func newTokenServer(t *testing.T) *tokenServer {
	t.Helper()
	cert, key, certPEM, _ := selfSigned(t, "token-signer")
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("x5c", []string{base64.StdEncoding.EncodeToString(cert.Raw)}))
	if err != nil {
		t.Fatal(err)
	}
	ts := &tokenServer{certPEM: certPEM}
	ts.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ts.mu.Lock()
		ts.auths = append(ts.auths, req.Header.Get("Authorization"))
		ts.mu.Unlock()
		u, p, ok := req.BasicAuth()
		if !ok || u != registryUser || p != registryPass {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		var access []map[string]any
		for _, scope := range req.URL.Query()["scope"] {
			parts := strings.Split(scope, ":")
			if len(parts) != 3 {
				continue
			}
			access = append(access, map[string]any{"type": parts[0], "name": parts[1], "actions": strings.Split(parts[2], ",")})
		}
		now := time.Now()
		claims, _ := json.Marshal(map[string]any{
			"iss": tokenIssuer, "sub": u, "aud": req.URL.Query().Get("service"),
			"exp": now.Add(5 * time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix(),
			"jti": fmt.Sprint(now.UnixNano()), "access": access,
		})
		jws, err := signer.Sign(claims)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		tok, _ := jws.CompactSerialize()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"token": tok, "access_token": tok, "expires_in": 300, "issued_at": now.Format(time.RFC3339)})
	}))
	t.Cleanup(ts.srv.Close)
	return ts
}

func (ts *tokenServer) authorizations() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]string(nil), ts.auths...)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		t.Fatalf("listener address %v", l.Addr())
	}
	return addr.Port
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

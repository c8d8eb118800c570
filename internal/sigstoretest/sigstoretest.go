// Package sigstoretest runs Sigstore's own servers for tests, built by `make
// sigstore` into bin/tools (KEYLESS_SIGSTORE_BIN under make test): a Fulcio
// with a given config (a keyless-generated one, trusting the test's CI
// issuer) and a file-free ephemeral CA, and a timestamp authority with an
// in-memory signer, both on loopback, stopped when the test ends; and the
// trusted root (trusted_root.json) naming exactly them. No Rekor (it needs
// Trillian and MySQL) and no CT log: verifiers are told so.
package sigstoretest

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// Env names the folder of the binaries.
const Env = "KEYLESS_SIGSTORE_BIN"

// Bin is the path of a Sigstore binary (cosign, fulcio, timestamp-server):
// $KEYLESS_SIGSTORE_BIN/name, else bin/tools/name of the module. A test
// fails (never skips) without it.
func Bin(tb testing.TB, name string) string {
	tb.Helper()
	dir := os.Getenv(Env)
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			tb.Fatal(err)
		}
		for d := wd; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				dir = filepath.Join(d, "bin", "tools")
				break
			}
			if filepath.Dir(d) == d {
				tb.Fatalf("no go.mod above the test: set %s", Env)
			}
		}
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		tb.Fatalf("no %s binary at %s: run `make sigstore` (or set %s)", name, p, Env)
	}
	return p
}

// Stack is a running Fulcio and timestamp authority.
type Stack struct {
	FulcioURL string
	// TimestampURL is the RFC 3161 endpoint (…/api/v1/timestamp).
	TimestampURL string
	// TrustedRoot names the Fulcio CA and the timestamp authority.
	TrustedRoot *root.TrustedRoot
	// TrustedRootJSON is TrustedRoot as trusted_root.json, and
	// TrustedRootPath a file holding it (for cosign --trusted-root).
	TrustedRootJSON []byte
	TrustedRootPath string
	// SigningConfigPath is a cosign signing config naming the two
	// (cosign sign --signing-config).
	SigningConfigPath string
}

// Start runs Fulcio with fulcioConfig (its config.json) and a timestamp
// authority.
func Start(tb testing.TB, fulcioConfig []byte) *Stack {
	tb.Helper()
	dir := tb.TempDir()
	cfg := filepath.Join(dir, "fulcio.json")
	if err := os.WriteFile(cfg, fulcioConfig, 0o600); err != nil {
		tb.Fatal(err)
	}
	fp, gp, mp, tp := freePort(tb), freePort(tb), freePort(tb), freePort(tb)
	run(tb, dir, Bin(tb, "fulcio"), "serve", "--ca", "ephemeralca", "--ct-log-url", "", "--config-path", cfg,
		"--host", "127.0.0.1", "--port", fmt.Sprint(fp), "--grpc-host", "127.0.0.1", "--grpc-port", fmt.Sprint(gp),
		"--metrics-port", fmt.Sprint(mp), "--legacy-unix-domain-socket", filepath.Join(dir, "fulcio.sock"))
	run(tb, dir, Bin(tb, "timestamp-server"), "serve", "--host", "127.0.0.1", "--port", fmt.Sprint(tp),
		"--timestamp-signer", "memory", "--disable-ntp-monitoring")
	s := &Stack{FulcioURL: fmt.Sprintf("http://127.0.0.1:%d", fp), TimestampURL: fmt.Sprintf("http://127.0.0.1:%d/api/v1/timestamp", tp)}
	fulcioPEM := get(tb, s.FulcioURL+"/api/v1/rootCert")
	tsaPEM := get(tb, fmt.Sprintf("http://127.0.0.1:%d/api/v1/timestamp/certchain", tp))
	fc, err := cryptoutils.UnmarshalCertificatesFromPEM(fulcioPEM)
	if err != nil || len(fc) == 0 {
		tb.Fatalf("Fulcio's root: %v", err)
	}
	tc, err := cryptoutils.UnmarshalCertificatesFromPEM(tsaPEM)
	if err != nil || len(tc) < 2 {
		tb.Fatalf("the timestamp authority's chain: %d certificates, %v", len(tc), err)
	}
	start := time.Now().Add(-time.Hour)
	ca := &root.FulcioCertificateAuthority{Root: fc[len(fc)-1], Intermediates: fc[:len(fc)-1], ValidityPeriodStart: start, URI: s.FulcioURL}
	ta := &root.SigstoreTimestampingAuthority{Root: tc[len(tc)-1], Intermediates: tc[1 : len(tc)-1], Leaf: tc[0], ValidityPeriodStart: start, URI: s.TimestampURL}
	if s.TrustedRoot, err = root.NewTrustedRoot(root.TrustedRootMediaType01, []root.CertificateAuthority{ca}, nil, []root.TimestampingAuthority{ta}, nil); err != nil {
		tb.Fatal(err)
	}
	if s.TrustedRootJSON, err = s.TrustedRoot.MarshalJSON(); err != nil {
		tb.Fatal(err)
	}
	s.TrustedRootPath = filepath.Join(dir, "trusted_root.json")
	s.SigningConfigPath = filepath.Join(dir, "signing_config.json")
	signing := fmt.Sprintf(`{"mediaType":"application/vnd.dev.sigstore.signingconfig.v0.2+json",`+
		`"caUrls":[{"url":%q,"majorApiVersion":1,"validFor":{"start":"2020-01-01T00:00:00Z"},"operator":"test"}],`+
		`"tsaUrls":[{"url":%q,"majorApiVersion":1,"validFor":{"start":"2020-01-01T00:00:00Z"},"operator":"test"}],`+
		`"tsaConfig":{"selector":"ANY"}}`, s.FulcioURL, s.TimestampURL)
	for p, data := range map[string][]byte{s.TrustedRootPath: s.TrustedRootJSON, s.SigningConfigPath: []byte(signing)} {
		if err := os.WriteFile(p, data, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	return s
}

// startTimeout bounds waiting for a server to answer.
const startTimeout = 60 * time.Second

func run(tb testing.TB, dir, bin string, args ...string) {
	tb.Helper()
	log, err := os.Create(filepath.Join(dir, filepath.Base(bin)+".log"))
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, args...) //nolint:gosec // the test's own Sigstore binaries
	cmd.Stdout, cmd.Stderr, cmd.Dir = log, log, dir
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = log.Close()
		if tb.Failed() {
			if b, err := os.ReadFile(log.Name()); err == nil {
				tb.Logf("%s log:\n%s", filepath.Base(bin), tail(b, 4000))
			}
		}
	})
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// get waits for url to answer 200 and returns the body.
func get(tb testing.TB, url string) []byte {
	tb.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		resp, err := http.Get(url) //nolint:noctx,gosec // a bounded readiness poll of the test's own server
		if err == nil {
			b, rerr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK && rerr == nil {
				return b
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s did not answer: %v", url, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

// TrustedRootWithoutTimestamps is the stack's trusted root without its
// timestamp authority (nothing signed by it can be given a time).
func (s *Stack) TrustedRootWithoutTimestamps(tb testing.TB) *root.TrustedRoot {
	tb.Helper()
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, s.TrustedRoot.FulcioCertificateAuthorities(), nil, nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return tr
}

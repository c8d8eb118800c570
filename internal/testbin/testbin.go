// Package testbin finds and waits for the real servers tests run (built by
// make into bin/: the registry, versitygw, …): one lookup rule and one
// readiness poll for every such helper package.
package testbin

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Find returns the binary named by the environment variable env, else
// bin/<name> of the module above the test. A test fails (never skips)
// without it, saying which make target builds it.
func Find(tb testing.TB, env, name, makeTarget string) string {
	tb.Helper()
	if p := os.Getenv(env); p != "" {
		if _, err := os.Stat(p); err != nil {
			tb.Fatalf("%s=%s: %v (run `make %s`)", env, p, err, makeTarget)
		}
		return p
	}
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, "bin", name)
			if _, err := os.Stat(p); err != nil {
				tb.Fatalf("no %s binary: run `make %s` (it builds bin/%s) or set %s", name, makeTarget, name, env)
			}
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatalf("no go.mod above the test: set %s", env)
		}
		dir = parent
	}
}

// FreeAddr is a loopback host:port nothing listens on now.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}

// WaitHTTP waits until url answers at all (any status), failing the test
// after timeout.
func WaitHTTP(tb testing.TB, url string, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(url) //nolint:noctx,gosec // a bounded readiness poll of the test's own server
		if err == nil {
			_ = resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s did not answer: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Package registrytest runs the real CNCF Distribution registry (built by
// `make registry` into bin/registry, KEYLESS_REGISTRY) on loopback for
// tests: plain HTTP, storage in the test's temporary folder, stopped when
// the test ends.
package registrytest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// startTimeout bounds waiting for the registry to answer /v2/.
const startTimeout = 20 * time.Second

// Start runs the registry binary bin and returns its host:port once it
// answers.
func Start(tb testing.TB, bin string) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	host := l.Addr().String()
	_ = l.Close()
	dir := tb.TempDir()
	cfg := fmt.Sprintf("version: 0.1\nlog: {level: error, accesslog: {disabled: true}}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: %s, secret: keyless-test}\n",
		filepath.Join(dir, "storage"), host)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o600); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", filepath.Join(dir, "config.yml")) //nolint:gosec // the test's own registry binary
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(startTimeout)
	for {
		resp, err := http.Get("http://" + host + "/v2/") //nolint:noctx // a bounded readiness poll
		if err == nil {
			_ = resp.Body.Close()
			return host
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the registry at %s did not start: %v", host, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

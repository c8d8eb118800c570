// Package objectstoretest runs a real S3 server — the Versity S3 Gateway
// (versitygw, Apache-2.0; built by `make versitygw` into bin/versitygw,
// KEYLESS_VERSITYGW) over a posix folder — on loopback for tests: plain
// HTTP, its data in the test's temporary folder, stopped when the test ends.
package objectstoretest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyless-cd/keyless/internal/testbin"
)

// Env names the versitygw binary (`make test` sets it).
const Env = "KEYLESS_VERSITYGW"

// startTimeout bounds waiting for the server to answer.
const startTimeout = 20 * time.Second

// Server is a running S3 server.
type Server struct {
	// Endpoint is its base URL (http://127.0.0.1:port).
	Endpoint string
	// AccessKey and SecretKey are its root user's.
	AccessKey, SecretKey string
	// Root is the folder it stores buckets in (a bucket is a folder, an
	// object a file), for tests that tamper with what it holds.
	Root string
}

// Start runs versitygw with one empty folder per bucket named in buckets.
func Start(tb testing.TB, buckets ...string) Server {
	tb.Helper()
	bin := Binary(tb)
	addr := testbin.FreeAddr(tb)
	s := Server{Endpoint: "http://" + addr, AccessKey: "keyless-test", SecretKey: "keyless-test-secret-0123456789", Root: filepath.Join(tb.TempDir(), "s3")}
	for _, b := range buckets {
		if err := os.MkdirAll(filepath.Join(s.Root, b), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	cmd := exec.Command(bin, "--access", s.AccessKey, "--secret", s.SecretKey, "--port", addr, "--quiet", "posix", s.Root) //nolint:gosec // the test's own S3 server
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	testbin.WaitHTTP(tb, s.Endpoint+"/", startTimeout)
	return s
}

// Binary finds versitygw: $KEYLESS_VERSITYGW, else bin/versitygw of the
// module. A test fails (never skips) without it.
func Binary(tb testing.TB) string {
	tb.Helper()
	return testbin.Find(tb, Env, "versitygw", "versitygw")
}

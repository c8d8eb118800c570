// Package registrytest runs the real CNCF Distribution registry (built by
// `make registry` into bin/registry, KEYLESS_REGISTRY) on loopback for
// tests: plain HTTP, storage in the test's temporary folder, stopped when
// the test ends.
package registrytest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/keyless-cd/keyless/internal/testbin"
)

// startTimeout bounds waiting for the registry to answer /v2/.
const startTimeout = 20 * time.Second

// Start runs the registry binary bin and returns its host:port once it
// answers.
func Start(tb testing.TB, bin string) string {
	tb.Helper()
	return StartWith(tb, bin, Options{}).Host
}

// Options configure StartWith.
type Options struct {
	// Username and Password, when set, make the registry require them
	// (its htpasswd authentication: a Basic challenge to every request).
	Username, Password string
}

// Registry is a running registry.
type Registry struct {
	// Host is its host:port on loopback.
	Host string
	// Storage is its filesystem storage folder (blobs under
	// docker/registry/v2/blobs/sha256/<2 hex>/<hex>/data), for tests that
	// tamper with what it serves.
	Storage string
}

// BlobPath is where the registry keeps the blob of digest (sha256:<hex>).
func (r Registry) BlobPath(digest string) string {
	hex := strings.TrimPrefix(digest, "sha256:")
	return filepath.Join(r.Storage, "docker", "registry", "v2", "blobs", "sha256", hex[:2], hex, "data")
}

// StartWith runs the registry binary bin with opts.
func StartWith(tb testing.TB, bin string, opts Options) Registry {
	tb.Helper()
	host := testbin.FreeAddr(tb)
	dir := tb.TempDir()
	storage := filepath.Join(dir, "storage")
	auth := ""
	if opts.Username != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(opts.Password), bcrypt.MinCost)
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(opts.Username+":"+string(hash)+"\n"), 0o600); err != nil {
			tb.Fatal(err)
		}
		auth = fmt.Sprintf("auth: {htpasswd: {realm: keyless-test, path: %s}}\n", filepath.Join(dir, "htpasswd"))
	}
	cfg := fmt.Sprintf("version: 0.1\nlog: {level: error, accesslog: {disabled: true}}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: %s, secret: keyless-test}\n%s",
		storage, host, auth)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o600); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", filepath.Join(dir, "config.yml")) //nolint:gosec // the test's own registry binary
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	testbin.WaitHTTP(tb, "http://"+host+"/v2/", startTimeout)
	return Registry{Host: host, Storage: storage}
}

// Env names the registry binary (`make registry` builds bin/registry and
// `make test` sets it).
const Env = "KEYLESS_REGISTRY"

// Binary finds the registry binary: $KEYLESS_REGISTRY, else bin/registry of
// the module. A test fails (never skips) without it.
func Binary(tb testing.TB) string {
	tb.Helper()
	return testbin.Find(tb, Env, "registry", "registry")
}

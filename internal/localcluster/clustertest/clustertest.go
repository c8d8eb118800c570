// Package clustertest starts a local control plane for tests: it finds the
// binaries ($KUBEBUILDER_ASSETS, else bin/k8s in a parent folder) and stops the
// cluster when the test ends. A missing binary fails the test; it never skips.
package clustertest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/keyless-cd/keyless/internal/localcluster"
)

// Assets returns the folder with the control-plane binaries for tests.
func Assets() string {
	if env := os.Getenv(localcluster.AssetsEnv); env != "" {
		return env
	}
	dir, err := os.Getwd()
	if err != nil {
		return localcluster.DefaultAssetsDir
	}
	for {
		candidate := filepath.Join(dir, localcluster.DefaultAssetsDir)
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return candidate
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return localcluster.DefaultAssetsDir
		}
		dir = parent
	}
}

// Start runs a local cluster for tb with opts (Assets and StateDir filled in
// when empty) and stops it in tb.Cleanup.
func Start(tb testing.TB, opts localcluster.Options) *localcluster.Cluster {
	tb.Helper()
	if opts.Assets == "" {
		opts.Assets = Assets()
	}
	if opts.StateDir == "" {
		opts.StateDir = tb.TempDir()
	}
	c, err := localcluster.Start(tb.Context(), opts)
	if err != nil {
		tb.Fatalf("starting local cluster: %v", err)
	}
	tb.Cleanup(c.Stop)
	return c
}

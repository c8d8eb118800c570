package main

import (
	"crypto/x509"
	"testing"
)

// TestFallbackRootsWhereTheSystemHasNone: in a process that finds no CA
// bundle (as in the image), keyless still has roots to verify forges with.
func TestFallbackRootsWhereTheSystemHasNone(t *testing.T) {
	empty := t.TempDir()
	t.Setenv("SSL_CERT_FILE", empty+"/none.pem")
	t.Setenv("SSL_CERT_DIR", empty)
	useFallbackRoots()
	pool, err := x509.SystemCertPool()
	if err != nil {
		t.Fatal(err)
	}
	//nolint:staticcheck // Subjects is the only count a CertPool offers
	if n := len(pool.Subjects()); n < 100 {
		t.Fatalf("%d roots, want Mozilla's (100+)", n)
	}
}

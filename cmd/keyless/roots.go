package main

import (
	"crypto/x509"

	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// useFallbackRoots gives crypto/x509 Mozilla's roots for where the system has
// none (the controller image carries no CA bundle), so HTTPS forges still
// verify. It parses the bundle (~150 certificates), so main calls it only
// after a render child has been served: children never dial out and must
// start fast. Where the system has roots, x509 keeps using them.
func useFallbackRoots() {
	pool := x509.NewCertPool()
	for r := range bundle.Roots() {
		cert, err := x509.ParseCertificate(r.Certificate)
		if err != nil {
			continue // a root that does not parse verifies nothing; the others still do
		}
		if r.Constraint == nil {
			pool.AddCert(cert)
		} else {
			pool.AddCertWithConstraint(cert, r.Constraint)
		}
	}
	x509.SetFallbackRoots(pool)
}

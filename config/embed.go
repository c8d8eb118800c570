// Package config carries keyless's install manifests (the CRD and the
// namespaced install) inside the binary, so `keyless-dev demo` and tests install
// exactly what a cluster admin applies with `kubectl apply -k`.
package config

import "embed"

// FS holds crd/ and install/.
//
//go:embed crd install
var FS embed.FS

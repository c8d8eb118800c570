// Command registry is the CNCF Distribution registry (the OCI registry of the
// chart tests of internal/helmrepo), built from
// github.com/distribution/distribution/v3 at the version pinned in this
// module's go.mod, with only the drivers those tests use: the filesystem and
// in-memory storage drivers and token authentication.
package main

import (
	"os"

	"github.com/distribution/distribution/v3/registry"
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	_ "github.com/distribution/distribution/v3/registry/auth/token"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
)

func main() {
	if err := registry.RootCmd.Execute(); err != nil {
		os.Exit(1)
	}
}

// Command keyless delivers applications from Git to Kubernetes without storing
// a cluster credential anywhere. All behaviour lives in internal/cli.
package main

import (
	"os"

	// Mozilla's roots, used only where the system has none: the image
	// carries no CA bundle, and must still verify HTTPS forges.
	_ "golang.org/x/crypto/x509roots/fallback"

	"github.com/keyless-cd/keyless/internal/cli"
	"github.com/keyless-cd/keyless/internal/renderproc"
)

func main() {
	// A render child (started by the controller or the CLI) renders and exits.
	renderproc.ServeIfWorker()
	os.Exit(cli.Main(os.Args[1:], cli.StdStreams()))
}

// Command keyless delivers applications from Git to Kubernetes without storing
// a cluster credential anywhere. All behaviour lives in internal/cli.
package main

import (
	"os"

	"github.com/keyless-cd/keyless/internal/cli"
	"github.com/keyless-cd/keyless/internal/renderproc"
)

func main() {
	// A render child (started by the controller or the CLI) renders and exits.
	renderproc.ServeIfWorker()
	useFallbackRoots()
	os.Exit(cli.Main(os.Args[1:], cli.StdStreams()))
}

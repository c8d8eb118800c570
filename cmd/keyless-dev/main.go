// Command keyless-dev runs keyless's developer machinery: a local control
// plane, a CI token issuer and the end-to-end demo. The product binary,
// cmd/keyless, does not link any of it.
package main

import (
	"os"

	"github.com/keyless-cd/keyless/internal/cli"
	"github.com/keyless-cd/keyless/internal/devcli"
	"github.com/keyless-cd/keyless/internal/renderproc"
)

func main() {
	// The demo's controller and CLI render in child processes of this binary.
	renderproc.ServeIfWorker()
	os.Exit(cli.MainWith(devcli.NewRootCommand, os.Args[1:], cli.StdStreams()))
}

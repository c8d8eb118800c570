// Command keyless delivers applications from Git to Kubernetes without storing
// a cluster credential anywhere. All behaviour lives in internal/cli.
package main

import (
	"os"

	"github.com/keyless-cd/keyless/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], cli.StdStreams()))
}

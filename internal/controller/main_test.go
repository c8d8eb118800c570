package controller_test

import (
	"os"
	"testing"

	"github.com/keyless-cd/keyless/internal/cli"
	"github.com/keyless-cd/keyless/internal/renderproc"
)

// runCLIEnv makes this test binary run a keyless command line (its
// arguments) instead of the tests: how a test starts `keyless controller`
// as a process of its own, under the shipped Deployment's constraints.
const runCLIEnv = "KEYLESS_TEST_RUN_CLI"

// TestMain lets this test binary serve as the render child process that
// the controller and the CLI start for every render, and as keyless itself.
func TestMain(m *testing.M) {
	renderproc.ServeIfWorker()
	if os.Getenv(runCLIEnv) == "1" {
		os.Exit(cli.Main(os.Args[1:], cli.StdStreams()))
	}
	os.Exit(m.Run())
}

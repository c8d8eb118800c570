package cli

import (
	"os"
	"testing"

	"github.com/keyless-cd/keyless/internal/renderproc"
)

// TestMain lets this test binary serve as the render child process that
// the controller and the CLI start for every render.
func TestMain(m *testing.M) {
	renderproc.ServeIfWorker()
	os.Exit(m.Run())
}

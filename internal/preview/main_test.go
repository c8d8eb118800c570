package preview_test

import (
	"os"
	"testing"

	"github.com/keyless-cd/keyless/internal/renderproc"
)

// TestMain lets this test binary serve as the render child process.
func TestMain(m *testing.M) {
	renderproc.ServeIfWorker()
	os.Exit(m.Run())
}

package cli

import (
	"fmt"
	"io"
	"os"

	"sigs.k8s.io/yaml"

	"github.com/keyless-cd/keyless/internal/celhealth"
	"github.com/keyless-cd/keyless/internal/controller"
)

// maxHealthExprsFile bounds --health-check-exprs.
const maxHealthExprsFile = 1 << 20

// readHealthCheckExprs reads the controller-wide CEL health entries of
// --health-check-exprs ("": none) and compiles them once, so a bad entry
// stops the controller at start naming it, not at the first sync.
func readHealthCheckExprs(path string) ([]celhealth.Expressions, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--health-check-exprs: %w", err)
	}
	defer func() { _ = f.Close() }()
	data, err := io.ReadAll(io.LimitReader(f, maxHealthExprsFile+1))
	if err != nil {
		return nil, fmt.Errorf("--health-check-exprs %s: %w", path, err)
	}
	if len(data) > maxHealthExprsFile {
		return nil, fmt.Errorf("--health-check-exprs %s: larger than %d bytes", path, maxHealthExprsFile)
	}
	var exprs []celhealth.Expressions
	if err := yaml.UnmarshalStrict(data, &exprs); err != nil {
		return nil, fmt.Errorf("--health-check-exprs %s: a YAML list of entries (apiVersion, kind, current, inProgress, failed): %w", path, err)
	}
	if _, err := controller.DefaultHealth(exprs); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return exprs, nil
}

package celhealth

import (
	"fmt"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

// CompileSpec compiles an Application's spec.healthCheckExprs (the same
// fields as Expressions): the one conversion the controller, keyless
// preview and keyless ui share. Its error names spec.healthCheckExprs and
// the entry.
func CompileSpec(exprs []kv1.HealthCheckExpr) (*Checker, error) {
	out := make([]Expressions, len(exprs))
	for i, e := range exprs {
		out[i] = Expressions(e)
	}
	c, err := Compile(out)
	if err != nil {
		return nil, fmt.Errorf("spec.healthCheckExprs: %w", err)
	}
	return c, nil
}

package celhealth

import (
	"fmt"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/ext"
)

// ReadyExpr is a compiled spec.dependsOn[].readyExpr (Flux's): a CEL
// expression over `self`, the Application that depends, and `dep`, the
// one it depends on, both as their JSON objects; true means dep is ready
// for self. Compiled once, bounded by CostLimit as health expressions are.
type ReadyExpr struct {
	expr string
	prg  cel.Program
}

// CompileReadyExpr compiles expr, refusing one that does not compile or
// is not boolean (wrapping ErrInvalid).
func CompileReadyExpr(expr string) (*ReadyExpr, error) {
	env, err := cel.NewEnv(cel.OptionalTypes(), cel.CrossTypeNumericComparisons(true), cel.DefaultUTCTimeZone(true),
		ext.Strings(), ext.Lists(), ext.Sets(), ext.Encoders(),
		cel.Variable("self", cel.DynType), cel.Variable("dep", cel.DynType))
	if err != nil {
		return nil, fmt.Errorf("the CEL environment: %w", err)
	}
	prg, err := compileOne(env, expr)
	if err != nil {
		return nil, fmt.Errorf("%w: readyExpr %q: %w", ErrInvalid, expr, err)
	}
	return &ReadyExpr{expr: expr, prg: prg}, nil
}

// Eval evaluates the expression; an error names it.
func (r *ReadyExpr) Eval(self, dep map[string]any) (bool, error) {
	out, _, err := r.prg.Eval(map[string]any{"self": self, "dep": dep})
	if err != nil {
		return false, fmt.Errorf("readyExpr %q: %w", r.expr, err)
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("readyExpr %q evaluated to %v, want a bool", r.expr, out)
	}
	return bool(b), nil
}

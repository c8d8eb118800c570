// Package celhealth decides the health of custom resources with CEL
// expressions in Flux's healthCheckExprs format (#37): per apiVersion and
// kind, `current`, `inProgress` and `failed` expressions evaluated against
// the object, so a Flux configuration ports over unchanged. Expressions are
// compiled once (Compile), bounded in cost, and their errors name the
// expression and the object. kstatus stays the fallback for kinds without
// an entry (Status reports handled=false).
//
// The evaluation is Flux's (RFC-0009): an object whose
// status.observedGeneration differs from metadata.generation is InProgress
// without evaluating anything; else inProgress, failed and current are
// evaluated in that order (the optional ones when given) and the first
// that is true decides; none true is InProgress.
package celhealth

import (
	"errors"
	"fmt"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/ext"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Expressions is one entry of healthCheckExprs, as Flux's Kustomization
// and HelmRelease have it.
type Expressions struct {
	// APIVersion and Kind select the objects the entry applies to.
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// Current is true when the object reached its desired state. Required.
	Current string `json:"current"`
	// InProgress is true while it has not yet. Optional.
	InProgress string `json:"inProgress,omitempty"`
	// Failed is true when it failed to. Optional (without it a failure
	// shows only as a wait that times out).
	Failed string `json:"failed,omitempty"`
}

// Limits bound what expressions may cost.
const (
	// CostLimit is CEL's runtime cost limit for one evaluation (as the
	// Kubernetes API server's per-expression limit for CRD rules).
	CostLimit = 1_000_000
	// MaxExpressionLength bounds an expression's source.
	MaxExpressionLength = 4096
	// MaxEntries bounds how many entries one set compiles.
	MaxEntries = 256
)

// ErrInvalid is returned (wrapped) by Compile for an entry that cannot be
// used: a missing field, a duplicate kind, an expression that does not
// compile or is not boolean.
var ErrInvalid = errors.New("invalid health check expression")

// EvalError is an expression that failed on an object.
type EvalError struct {
	// Field is current, inProgress or failed; Expr its source.
	Field, Expr string
	// Object is Kind/namespace/name.
	Object string
	Err    error
}

func (e *EvalError) Error() string {
	return fmt.Sprintf("health check %s %q on %s: %v", e.Field, e.Expr, e.Object, e.Err)
}

func (e *EvalError) Unwrap() error { return e.Err }

// variables are the object's top-level fields, as Flux binds them: an
// expression reads status.conditions, metadata.generation, spec.replicas.
var variables = []string{"apiVersion", "kind", "metadata", "spec", "status"}

// newEnv is the CEL environment of every expression: the object's fields
// as dynamic variables, optional field access (status.?conditions), and
// the string, list, set and encoder extensions.
func newEnv() (*cel.Env, error) {
	opts := []cel.EnvOption{
		cel.OptionalTypes(), cel.CrossTypeNumericComparisons(true), cel.DefaultUTCTimeZone(true),
		ext.Strings(), ext.Lists(), ext.Sets(), ext.Encoders(),
	}
	for _, v := range variables {
		opts = append(opts, cel.Variable(v, cel.DynType))
	}
	return cel.NewEnv(opts...)
}

type program struct {
	field, expr string
	prg         cel.Program
	status      status.Status
}

// Checker holds compiled expressions by apiVersion and kind.
type Checker struct {
	byGVK map[schema.GroupVersionKind][]program
}

// Compile checks and compiles exprs once. The first entry for a kind wins
// when later sets are merged (Merge); within one set a kind may appear once.
func Compile(exprs []Expressions) (*Checker, error) {
	if len(exprs) > MaxEntries {
		return nil, fmt.Errorf("%w: %d entries (at most %d)", ErrInvalid, len(exprs), MaxEntries)
	}
	env, err := newEnv()
	if err != nil {
		return nil, fmt.Errorf("the CEL environment: %w", err)
	}
	c := &Checker{byGVK: map[schema.GroupVersionKind][]program{}}
	for i, e := range exprs {
		where := fmt.Sprintf("healthCheckExprs[%d] (%s %s)", i, e.APIVersion, e.Kind)
		gv, err := schema.ParseGroupVersion(e.APIVersion)
		if err != nil || e.APIVersion == "" || e.Kind == "" {
			return nil, fmt.Errorf("%w: %s: apiVersion and kind are required", ErrInvalid, where)
		}
		gvk := gv.WithKind(e.Kind)
		if _, dup := c.byGVK[gvk]; dup {
			return nil, fmt.Errorf("%w: %s: %s is given twice", ErrInvalid, where, gvk)
		}
		if e.Current == "" {
			return nil, fmt.Errorf("%w: %s: current is required", ErrInvalid, where)
		}
		var progs []program
		for _, f := range []struct {
			field, expr string
			st          status.Status
		}{{"inProgress", e.InProgress, status.InProgressStatus}, {"failed", e.Failed, status.FailedStatus}, {"current", e.Current, status.CurrentStatus}} {
			if f.expr == "" {
				continue
			}
			p, err := compileOne(env, f.expr)
			if err != nil {
				return nil, fmt.Errorf("%w: %s.%s %q: %w", ErrInvalid, where, f.field, f.expr, err)
			}
			progs = append(progs, program{field: f.field, expr: f.expr, prg: p, status: f.st})
		}
		c.byGVK[gvk] = progs
	}
	return c, nil
}

func compileOne(env *cel.Env, expr string) (cel.Program, error) {
	if len(expr) > MaxExpressionLength {
		return nil, fmt.Errorf("%d characters (at most %d)", len(expr), MaxExpressionLength)
	}
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		return nil, iss.Err()
	}
	if t := ast.OutputType(); t != cel.BoolType && t != cel.DynType {
		return nil, fmt.Errorf("evaluates to %s, want a bool", t)
	}
	return env.Program(ast, cel.CostLimit(CostLimit), cel.InterruptCheckFrequency(100))
}

// Merge returns a checker with c's entries and, for kinds c has none for,
// defaults' (an Application's expressions over the controller-wide ones
// over the built-in library).
func (c *Checker) Merge(defaults *Checker) *Checker {
	out := &Checker{byGVK: map[schema.GroupVersionKind][]program{}}
	for _, src := range []*Checker{defaults, c} {
		if src == nil {
			continue
		}
		for k, v := range src.byGVK {
			out.byGVK[k] = v
		}
	}
	return out
}

// Status evaluates obj: handled is false when no entry has its apiVersion
// and kind (kstatus decides then). An expression that fails on obj is an
// *EvalError (the caller reports it and treats the object as in progress).
func (c *Checker) Status(obj *unstructured.Unstructured) (st status.Status, handled bool, err error) {
	if c == nil {
		return "", false, nil
	}
	progs, ok := c.byGVK[obj.GroupVersionKind()]
	if !ok {
		return "", false, nil
	}
	content := obj.UnstructuredContent()
	if og, found := intField(content, "status", "observedGeneration"); found {
		if gen, _ := intField(content, "metadata", "generation"); og != gen {
			return status.InProgressStatus, true, nil
		}
	}
	vars := map[string]any{}
	for _, v := range variables {
		if x, ok := content[v]; ok {
			vars[v] = x
		} else {
			vars[v] = map[string]any{}
		}
	}
	for _, p := range progs {
		out, _, err := p.prg.Eval(vars)
		if err != nil {
			return "", true, &EvalError{Field: p.field, Expr: p.expr, Object: objectName(obj), Err: err}
		}
		b, ok := out.(types.Bool)
		if !ok {
			return "", true, &EvalError{Field: p.field, Expr: p.expr, Object: objectName(obj), Err: fmt.Errorf("evaluated to %v (%s), want a bool", out, out.Type())}
		}
		if b {
			return p.status, true, nil
		}
	}
	return status.InProgressStatus, true, nil
}

func objectName(o *unstructured.Unstructured) string {
	if ns := o.GetNamespace(); ns != "" {
		return o.GetKind() + "/" + ns + "/" + o.GetName()
	}
	return o.GetKind() + "/" + o.GetName()
}

// intField reads an integer field whether it was decoded as an int64 (the
// API server's objects) or a float64 (plain JSON).
func intField(obj map[string]any, path ...string) (int64, bool) {
	v, found, err := unstructured.NestedFieldNoCopy(obj, path...)
	if !found || err != nil {
		return 0, false
	}
	switch n := v.(type) {
	case int64:
		return n, true
	case int:
		return int64(n), true
	case float64:
		return int64(n), true
	}
	return 0, false
}

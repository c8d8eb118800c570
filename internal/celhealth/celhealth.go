// Package celhealth decides the health of custom resources with CEL
// expressions in Flux's healthCheckExprs format (#37): per apiVersion and
// kind, `current`, `inProgress` and `failed` expressions evaluated against
// the object, so a Flux configuration ports over unchanged. Expressions are
// compiled once (Compile), bounded in cost, and their errors name the
// expression and the object. kstatus stays the fallback for kinds without
// an entry (Status reports handled=false).
//
// Entries match as Flux's do: by API group and kind, the version ignored;
// an entry without kind applies to every kind of its group, and an entry
// naming the kind wins over it. Library holds keyless's built-in entries
// (docs/health.md).
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
	// APIVersion and Kind select the objects the entry applies to: the
	// group of APIVersion (its version is ignored, as in Flux) and Kind.
	// Without Kind the entry applies to every kind of the group (not
	// allowed for the core group); an entry with Kind wins over it.
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

// Checker holds compiled expressions by API group and kind; a key with an
// empty Kind is a group-wide entry.
type Checker struct {
	byGK map[schema.GroupKind][]program
}

// Compile checks and compiles exprs once. Within one set a group and kind
// (or a group without kind) may appear once; across sets, Merge decides.
func Compile(exprs []Expressions) (*Checker, error) {
	if len(exprs) > MaxEntries {
		return nil, fmt.Errorf("%w: %d entries (at most %d)", ErrInvalid, len(exprs), MaxEntries)
	}
	env, err := newEnv()
	if err != nil {
		return nil, fmt.Errorf("the CEL environment: %w", err)
	}
	c := &Checker{byGK: map[schema.GroupKind][]program{}}
	for i, e := range exprs {
		where := fmt.Sprintf("healthCheckExprs[%d] (%s %s)", i, e.APIVersion, e.Kind)
		gv, err := schema.ParseGroupVersion(e.APIVersion)
		if err != nil || e.APIVersion == "" || (e.Kind == "" && gv.Group == "") {
			return nil, fmt.Errorf("%w: %s: apiVersion and kind are required (kind may be left out only for a named API group, to cover all its kinds)", ErrInvalid, where)
		}
		gk := schema.GroupKind{Group: gv.Group, Kind: e.Kind}
		if _, dup := c.byGK[gk]; dup {
			return nil, fmt.Errorf("%w: %s: %s is given twice (entries match by group and kind, whatever the version)", ErrInvalid, where, describe(gk))
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
		c.byGK[gk] = progs
	}
	return c, nil
}

func describe(gk schema.GroupKind) string {
	if gk.Kind == "" {
		return "every kind of group " + gk.Group
	}
	return gk.String()
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
// over the built-in library). A group-wide entry of c covers its group
// over defaults' entries for that group, kind named or not: an object is
// judged by c's exact entry, else c's group entry, else defaults'.
func (c *Checker) Merge(defaults *Checker) *Checker {
	out := &Checker{byGK: map[schema.GroupKind][]program{}}
	if defaults != nil {
		for k, v := range defaults.byGK {
			if c != nil {
				if _, shadowed := c.byGK[schema.GroupKind{Group: k.Group}]; shadowed {
					continue
				}
			}
			out.byGK[k] = v
		}
	}
	if c != nil {
		for k, v := range c.byGK {
			out.byGK[k] = v
		}
	}
	return out
}

// Status evaluates obj: handled is false when no entry has its group and
// kind, nor its group without kind (kstatus decides then). An expression
// that fails on obj is an *EvalError naming the expression and the object
// (keyless's engine counts the object Failed, with it as the message).
func (c *Checker) Status(obj *unstructured.Unstructured) (st status.Status, handled bool, err error) {
	if c == nil {
		return "", false, nil
	}
	gk := obj.GroupVersionKind().GroupKind()
	progs, ok := c.byGK[gk]
	if !ok && gk.Group != "" {
		progs, ok = c.byGK[schema.GroupKind{Group: gk.Group}]
	}
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

package celhealth

import (
	"errors"
	"strings"
	"testing"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// certificate is the RFC-0009 example, in Flux's own words.
var certificate = Expressions{
	APIVersion: "cert-manager.io/v1", Kind: "Certificate",
	InProgress: "status.conditions.filter(e, e.type == 'Issuing').all(e, e.observedGeneration == metadata.generation && e.status == 'True')",
	Failed:     "status.conditions.filter(e, e.type == 'Ready').all(e, e.observedGeneration == metadata.generation && e.status == 'False')",
	Current:    "status.conditions.filter(e, e.type == 'Ready').all(e, e.observedGeneration == metadata.generation && e.status == 'True')",
}

func object(t *testing.T, y string) *unstructured.Unstructured {
	t.Helper()
	o := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(y), &o.Object); err != nil {
		t.Fatal(err)
	}
	return o
}

// certificateSafe is the same check written so that a condition that is
// absent (cert-manager drops Issuing once issued) is not taken as true:
// `all` holds on an empty list, `exists` does not.
var certificateSafe = Expressions{
	APIVersion: "cert-manager.io/v1", Kind: "Certificate",
	InProgress: "status.?conditions.orValue([]).exists(e, e.type == 'Issuing' && e.status == 'True')",
	Failed:     "status.?conditions.orValue([]).exists(e, e.type == 'Ready' && e.observedGeneration == metadata.generation && e.status == 'False')",
	Current:    "status.?conditions.orValue([]).exists(e, e.type == 'Ready' && e.observedGeneration == metadata.generation && e.status == 'True')",
}

func TestCertificateStates(t *testing.T) {
	c, err := Compile([]Expressions{certificateSafe})
	if err != nil {
		t.Fatal(err)
	}
	cert := func(conds string) *unstructured.Unstructured {
		return object(t, `apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: web-tls, namespace: shop, generation: 2}
status:
  conditions:
`+conds)
	}
	for _, tc := range []struct {
		name string
		obj  *unstructured.Unstructured
		want status.Status
	}{
		{"issuing", cert("  - {type: Issuing, status: 'True', observedGeneration: 2}\n  - {type: Ready, status: 'False', observedGeneration: 2}\n"), status.InProgressStatus},
		{"failed to issue", cert("  - {type: Ready, status: 'False', observedGeneration: 2, reason: Failed}\n  - {type: Issuing, status: 'False', observedGeneration: 2}\n"), status.FailedStatus},
		{"issued", cert("  - {type: Ready, status: 'True', observedGeneration: 2}\n"), status.CurrentStatus},
		{"stale conditions", cert("  - {type: Ready, status: 'True', observedGeneration: 1}\n"), status.InProgressStatus},
		{"observedGeneration behind", object(t, "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: x, generation: 3}\nstatus: {observedGeneration: 2, conditions: [{type: Ready, status: 'True', observedGeneration: 3}]}\n"), status.InProgressStatus},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, handled, err := c.Status(tc.obj)
			if err != nil || !handled || got != tc.want {
				t.Fatalf("Status = %s, handled %v, %v; want %s", got, handled, err, tc.want)
			}
		})
	}
	if _, handled, _ := c.Status(object(t, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n")); handled {
		t.Error("a kind without an entry is handled (kstatus must decide)")
	}
	// Flux's RFC example takes an issued Certificate (no Issuing condition
	// left) as in progress: the evaluation is Flux's, pitfalls included.
	rfc, err := Compile([]Expressions{certificate})
	if err != nil {
		t.Fatal(err)
	}
	if st, _, _ := rfc.Status(cert("  - {type: Ready, status: 'True', observedGeneration: 2}\n")); st != status.InProgressStatus {
		t.Errorf("the RFC's expressions on an issued Certificate: %s, want InProgress as in Flux", st)
	}
}

// TestEvaluationErrorsNameTheExpressionAndObject: an object without a
// status makes `status.conditions` fail; the error says which expression
// on which object; the optional-field form does not fail.
func TestEvaluationErrorsNameTheExpressionAndObject(t *testing.T) {
	c, err := Compile([]Expressions{certificate, {
		APIVersion: "example.com/v1", Kind: "Safe",
		Failed:  "status.?conditions.orValue([]).exists(e, e.type == 'Ready' && e.status == 'False')",
		Current: "status.?conditions.orValue([]).exists(e, e.type == 'Ready' && e.status == 'True')",
	}})
	if err != nil {
		t.Fatal(err)
	}
	_, handled, err := c.Status(object(t, "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: web-tls, namespace: shop}\n"))
	var ee *EvalError
	if !handled || !errors.As(err, &ee) || ee.Field != "inProgress" || ee.Object != "Certificate/shop/web-tls" || !strings.Contains(err.Error(), "status.conditions.filter(e, e.type == 'Issuing')") {
		t.Fatalf("handled %v, err %v", handled, err)
	}
	st, _, err := c.Status(object(t, "apiVersion: example.com/v1\nkind: Safe\nmetadata: {name: s}\n"))
	if err != nil || st != status.InProgressStatus {
		t.Fatalf("optional access on a new object: %s, %v", st, err)
	}
}

func TestCompileRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		e    []Expressions
		want string
	}{
		{"no kind", []Expressions{{APIVersion: "v1", Current: "true"}}, "apiVersion and kind are required"},
		{"no current", []Expressions{{APIVersion: "example.com/v1", Kind: "X"}}, "current is required"},
		{"syntax", []Expressions{{APIVersion: "example.com/v1", Kind: "X", Current: "status.ready =="}}, "healthCheckExprs[0] (example.com/v1 X).current"},
		{"not a bool", []Expressions{{APIVersion: "example.com/v1", Kind: "X", Current: "'yes'"}}, "want a bool"},
		{"unknown variable", []Expressions{{APIVersion: "example.com/v1", Kind: "X", Current: "object.status == 1"}}, "undeclared reference"},
		{"twice", []Expressions{{APIVersion: "example.com/v1", Kind: "X", Current: "true"}, {APIVersion: "example.com/v1", Kind: "X", Current: "false"}}, "given twice"},
		{"too long", []Expressions{{APIVersion: "example.com/v1", Kind: "X", Current: strings.Repeat("true && ", 600) + "true"}}, "at most 4096"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(tc.e)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Compile: %v, want %q", err, tc.want)
			}
		})
	}
}

// TestCostIsBounded: an expression whose cost explodes with the object's
// size stops at the cost limit instead of holding a worker.
func TestCostIsBounded(t *testing.T) {
	c, err := Compile([]Expressions{{APIVersion: "example.com/v1", Kind: "X",
		Current: "spec.items.all(a, spec.items.all(b, spec.items.all(c, a + b + c >= 0)))"}})
	if err != nil {
		t.Fatal(err)
	}
	items := make([]any, 500)
	for i := range items {
		items[i] = int64(i)
	}
	o := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "example.com/v1", "kind": "X", "metadata": map[string]any{"name": "big"}, "spec": map[string]any{"items": items}}}
	_, _, err = c.Status(o)
	var ee *EvalError
	if !errors.As(err, &ee) || !strings.Contains(err.Error(), "cost limit") {
		t.Fatalf("a 500³ comprehension: %v", err)
	}
}

func TestMerge(t *testing.T) {
	library, _ := Compile([]Expressions{{APIVersion: "example.com/v1", Kind: "X", Current: "false"}, {APIVersion: "example.com/v1", Kind: "Y", Current: "true"}})
	app, _ := Compile([]Expressions{{APIVersion: "example.com/v1", Kind: "X", Current: "true"}})
	m := app.Merge(library)
	for kind, want := range map[string]status.Status{"X": status.CurrentStatus, "Y": status.CurrentStatus} {
		st, handled, err := m.Status(object(t, "apiVersion: example.com/v1\nkind: '"+kind+"'\nmetadata: {name: a}\n"))
		if err != nil || !handled || st != want {
			t.Errorf("%s: %s %v %v, want %s (the Application's entry over the library's)", kind, st, handled, err, want)
		}
	}
	var none *Checker
	if _, handled, _ := none.Status(object(t, "apiVersion: example.com/v1\nkind: X\nmetadata: {name: a}\n")); handled {
		t.Error("a nil checker handles objects")
	}
}

// FuzzCompile: a tenant writes the expressions; whatever they write
// compiles or is refused, and what compiles evaluates within the cost
// limit without panicking.
func FuzzCompile(f *testing.F) {
	f.Add(certificate.Current)
	f.Add("status.?conditions.orValue([]).exists(e, e.type == 'Ready')")
	f.Add("spec.items.all(a, spec.items.all(b, a == b))")
	f.Add("metadata.name.matches('^a+$')")
	f.Fuzz(func(t *testing.T, expr string) {
		c, err := Compile([]Expressions{{APIVersion: "example.com/v1", Kind: "X", Current: expr, Failed: expr}})
		if err != nil {
			return
		}
		o := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "example.com/v1", "kind": "X",
			"metadata": map[string]any{"name": "aaaa", "generation": int64(1)},
			"spec":     map[string]any{"items": []any{int64(1), int64(2), int64(3)}},
			"status":   map[string]any{"conditions": []any{map[string]any{"type": "Ready", "status": "True"}}}}}
		_, _, _ = c.Status(o)
	})
}

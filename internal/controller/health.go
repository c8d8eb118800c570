package controller

import (
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/types"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/celhealth"
	"github.com/keyless-cd/keyless/internal/engine"
)

// healthCheckers holds each Application's CEL health (#37): its
// spec.healthCheckExprs compiled once per generation, over the
// controller-wide entries (--health-check-exprs) and keyless's built-in
// library, which were compiled once at start.
type healthCheckers struct {
	defaults *celhealth.Checker
	mu       sync.Mutex
	byApp    map[types.NamespacedName]compiledHealth
}

type compiledHealth struct {
	generation int64
	checker    *celhealth.Checker
}

// DefaultHealth compiles the controller-wide entries over keyless's
// built-in library: what every Application's objects are judged with
// unless its own spec.healthCheckExprs says otherwise.
func DefaultHealth(exprs []celhealth.Expressions) (*celhealth.Checker, error) {
	lib, err := celhealth.DefaultChecker()
	if err != nil {
		return nil, fmt.Errorf("the built-in health library: %w", err)
	}
	c, err := celhealth.Compile(exprs)
	if err != nil {
		return nil, fmt.Errorf("--health-check-exprs: %w", err)
	}
	return c.Merge(lib), nil
}

// newHealthCheckers keeps defaults (never nil: DefaultHealth's).
func newHealthCheckers(defaults *celhealth.Checker) *healthCheckers {
	return &healthCheckers{defaults: defaults, byApp: map[types.NamespacedName]compiledHealth{}}
}

// get returns the health app's objects are judged with (nil: kstatus
// alone), or the error of an entry of spec.healthCheckExprs that does not
// compile, naming it.
func (h *healthCheckers) get(app *kv1.Application) (engine.Health, error) {
	if len(app.Spec.HealthCheckExprs) == 0 {
		return h.defaults, nil
	}
	key := types.NamespacedName{Namespace: app.Namespace, Name: app.Name}
	h.mu.Lock()
	c, ok := h.byApp[key]
	h.mu.Unlock()
	if ok && c.generation == app.Generation {
		return c.checker, nil
	}
	checker, err := celhealth.CompileSpec(app.Spec.HealthCheckExprs)
	if err != nil {
		return nil, err
	}
	checker = checker.Merge(h.defaults)
	h.mu.Lock()
	h.byApp[key] = compiledHealth{generation: app.Generation, checker: checker}
	h.mu.Unlock()
	return checker, nil
}

func (h *healthCheckers) forget(key types.NamespacedName) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.byApp, key)
}

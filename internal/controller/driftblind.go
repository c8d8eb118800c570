package controller

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/keyless-cd/keyless/internal/engine"
)

// blindSchedule is the re-apply schedule of Applications with objects of a
// kind the controller does not watch (typically one its Role may not
// list/watch): their drift is looked for by re-applying once per interval.
type blindSchedule struct {
	// synced reports whether the watch of a kind has listed its objects.
	synced func(ctx context.Context, gvk schema.GroupVersionKind) bool

	mu      sync.Mutex
	checked map[types.NamespacedName]time.Time // last re-apply of each Application
}

func newBlindSchedule(synced func(ctx context.Context, gvk schema.GroupVersionKind) bool) *blindSchedule {
	return &blindSchedule{synced: synced, checked: map[types.NamespacedName]time.Time{}}
}

// due reports whether some of refs are of a kind whose watch has not
// synced — typically one the controller's Role may not list/watch — and
// interval has passed since the last such check of k. Drift of those objects
// is not seen by a watch, so it is looked for by re-applying (a dry-run per
// object; a write only where something drifted) once per interval.
func (d *blindSchedule) due(ctx context.Context, k types.NamespacedName, refs []engine.ObjectRef, interval time.Duration) bool {
	blind := !allKindsSynced(ctx, refs, d.synced)
	d.mu.Lock()
	defer d.mu.Unlock()
	if !blind {
		delete(d.checked, k)
		return false
	}
	last, ok := d.checked[k]
	if !ok {
		d.checked[k] = time.Now() // just applied: the first check is one interval away
		return false
	}
	if time.Since(last) < interval {
		return false
	}
	d.checked[k] = time.Now()
	return true
}

// forget drops k's schedule.
func (d *blindSchedule) forget(k types.NamespacedName) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.checked, k)
}

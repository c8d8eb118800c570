package controller

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/keyless-cd/keyless/internal/engine"
)

// TestDriftDuringSyncIsKept: an object edited while a sync runs is marked
// after the reconcile read the mark; clearing what that reconcile saw must
// leave the newer mark, or the edit is never healed (until the interval).
func TestDriftDuringSyncIsKept(t *testing.T) {
	d := newDriftMarks(&metrics{driftEvents: prometheus.NewCounter(prometheus.CounterOpts{Name: "t"})})
	app := types.NamespacedName{Namespace: "team-a", Name: "web"}

	d.markDirty(app) // the Deployment is edited
	seen := d.mark(app)
	if seen == 0 {
		t.Fatal("an edit did not mark the Application")
	}
	d.markDirty(app) // the ConfigMap is deleted while the revert is applied
	d.clear(app, seen)
	if d.mark(app) == 0 {
		t.Fatal("the deletion made during the sync was forgotten when the sync cleared its own mark")
	}

	seen = d.mark(app)
	d.clear(app, seen)
	if got := d.mark(app); got != 0 {
		t.Fatalf("the Application is still marked (%d) after a sync that saw every edit", got)
	}

	clean := types.NamespacedName{Namespace: "team-a", Name: "api"}
	d.markDirty(clean)
	d.clear(clean, 0) // a reconcile that started before any drift
	if d.mark(clean) == 0 {
		t.Fatal("a reconcile that saw no drift cleared drift marked after it started")
	}
}

// TestHookRunsAreNotDrift: a hook object (created, finished and deleted by
// each sync) belongs to no Application for drift; a managed object does.
func TestHookRunsAreNotDrift(t *testing.T) {
	managed := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "web",
		Labels: map[string]string{engine.InventoryLabel: "web"}}}
	if k, ok := owner(managed); !ok || k != (types.NamespacedName{Namespace: "team-a", Name: "web"}) {
		t.Fatalf("owner of a managed object = %v, %v", k, ok)
	}
	hook := managed.DeepCopy()
	hook.Labels[engine.HookLabel] = "0123abcd"
	if k, ok := owner(hook); ok {
		t.Fatalf("a hook run marks %v for drift", k)
	}
	if _, ok := owner(&metav1.PartialObjectMetadata{}); ok {
		t.Fatal("an unlabelled object has an owner")
	}
}

package controller

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	"github.com/keyless-cd/keyless/internal/engine"
)

// driftTracker is how the reconciler sees drift: it marks an Application
// dirty (and enqueues it) the moment one of its objects is edited or deleted
// by someone else, so self-heal does not wait for the next interval. It is
// three parts, each with one job: the sequenced marks (driftmarks.go), the
// registry of watched kinds (watches.go) and the re-apply schedule of kinds
// that cannot be watched (driftblind.go).
type driftTracker struct {
	marks   *driftMarks
	watches *watchRegistry
	blind   *blindSchedule
}

// newDriftTracker builds the three parts over the managed objects' cache;
// access (nil: watch every kind) is asked before a kind is watched.
func newDriftTracker(c cache.Cache, m *metrics, access *watchAccess) *driftTracker {
	marks := newDriftMarks(m)
	watches := newWatchRegistry(c, access, marks)
	return &driftTracker{marks: marks, watches: watches, blind: newBlindSchedule(watches.synced)}
}

// setController lets the watches enqueue through c.
func (d *driftTracker) setController(c controller.Controller) { d.watches.setController(c) }

// mark returns the sequence number of k's newest unhandled drift event, 0
// when there is none. A reconcile reads it before it reads the cluster and
// hands it back to clear when it is done.
func (d *driftTracker) mark(k types.NamespacedName) uint64 { return d.marks.mark(k) }

// clear forgets k's drift up to seen (a value of mark).
func (d *driftTracker) clear(k types.NamespacedName, seen uint64) { d.marks.clear(k, seen) }

// setProgressing records whether k waits for its objects to become ready.
func (d *driftTracker) setProgressing(k types.NamespacedName, on bool) {
	d.marks.setProgressing(k, on)
}

// progressingRequeue is how soon a rolling-out k's health is read again.
// watched says every kind of its objects was watched before the last read:
// then each status update of theirs re-checks it (setProgressing made the
// handler enqueue k), and the poll is only a safety net — unless an update
// arrived between the read and setProgressing, which the handler did not
// enqueue.
func (d *driftTracker) progressingRequeue(k types.NamespacedName, watched bool) time.Duration {
	if watched && !d.marks.unchecked(k) {
		return progressingFallback
	}
	return progressingPoll
}

// expect records the labels and annotations of objs, the set about to be
// applied for k: a change to any other key of theirs is not drift.
func (d *driftTracker) expect(k types.NamespacedName, objs []*unstructured.Unstructured) {
	d.watches.applied.record(k, objs)
}

// watch makes sure every kind in res is watched.
func (d *driftTracker) watch(ctx context.Context, res *engine.Result) { d.watches.watch(ctx, res) }

// watchRefs makes sure the kinds of refs (an inventory) are watched.
func (d *driftTracker) watchRefs(ctx context.Context, refs []engine.ObjectRef) {
	d.watches.watchRefs(ctx, refs)
}

// blindDue reports whether k has objects of an unwatched kind and is due
// for its once-per-interval re-apply.
func (d *driftTracker) blindDue(ctx context.Context, k types.NamespacedName, refs []engine.ObjectRef, interval time.Duration) bool {
	return d.blind.due(ctx, k, refs, interval)
}

// healthRecheck is how long a Healthy Application's health is trusted
// without reading its objects, when no event of theirs arrived meanwhile.
const healthRecheck = 10 * time.Minute

// healthSettled says whether k's last health check still holds (see
// driftMarks.healthSettled), and the event number to hand to healthChecked.
func (d *driftTracker) healthSettled(k types.NamespacedName) (uint64, bool) {
	return d.marks.healthSettled(k, time.Now(), healthRecheck)
}

// healthChecked records a health check of k's refs that started after
// event seen and when every kind was watched (synced) at its start.
func (d *driftTracker) healthChecked(k types.NamespacedName, seen uint64, watched bool) {
	d.marks.healthChecked(k, seen, time.Now(), watched)
}

// unsettle makes k's next health refresh read its objects (after a sync).
func (d *driftTracker) unsettle(k types.NamespacedName) { d.marks.unsettle(k) }

// allSynced reports whether every kind of refs is watched and listed.
func (d *driftTracker) allSynced(ctx context.Context, refs []engine.ObjectRef) bool {
	return d.watches.allSynced(ctx, refs)
}

// forget drops what is held for k.
func (d *driftTracker) forget(k types.NamespacedName) {
	d.marks.forget(k)
	d.blind.forget(k)
	d.watches.applied.forget(k)
}

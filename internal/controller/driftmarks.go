package controller

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// driftMarks holds, per Application, the sequence number of its newest
// drift event not yet handled, and whether its objects are still rolling
// out. A reconcile clears only the mark it saw when it started: an edit made
// while it applies stays marked and is healed by the next reconcile instead
// of being forgotten.
type driftMarks struct {
	metrics *metrics

	mu          sync.Mutex
	dirty       map[types.NamespacedName]uint64
	seq         uint64
	progressing map[types.NamespacedName]bool
}

func newDriftMarks(m *metrics) *driftMarks {
	return &driftMarks{metrics: m, dirty: map[types.NamespacedName]uint64{}, progressing: map[types.NamespacedName]bool{}}
}

// mark returns the sequence number of k's newest unhandled drift event, 0
// when there is none. A reconcile reads it before it reads the cluster and
// hands it back to clear when it is done.
func (d *driftMarks) mark(k types.NamespacedName) uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dirty[k]
}

// clear forgets k's drift up to seen (a value of mark): drift marked after
// that is kept, so an edit made during a sync is not lost.
func (d *driftMarks) clear(k types.NamespacedName, seen uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dirty[k] <= seen {
		delete(d.dirty, k)
	}
}

func (d *driftMarks) markDirty(k types.NamespacedName) {
	d.mu.Lock()
	d.seq++
	d.dirty[k] = d.seq
	d.mu.Unlock()
	d.metrics.driftEvents.Inc()
}

// setProgressing records whether an Application waits for its objects to
// become ready: while it does, their status updates re-check its health at
// once instead of at the next poll.
func (d *driftMarks) setProgressing(k types.NamespacedName, on bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if on {
		d.progressing[k] = true
	} else {
		delete(d.progressing, k)
	}
}

// isProgressing reports whether k waits for its objects to become ready.
func (d *driftMarks) isProgressing(k types.NamespacedName) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.progressing[k]
}

// forget drops k's marks.
func (d *driftMarks) forget(k types.NamespacedName) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.dirty, k)
	delete(d.progressing, k)
}

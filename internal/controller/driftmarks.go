package controller

import (
	"sync"
	"time"

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
	// stirred is the sequence number of the newest event (any update or
	// deletion, status included) of k's objects not yet followed by a
	// health check; checked is when k's health was last read from the
	// cluster with every kind of its objects watched.
	stirred map[types.NamespacedName]uint64
	checked map[types.NamespacedName]time.Time
}

func newDriftMarks(m *metrics) *driftMarks {
	return &driftMarks{metrics: m, dirty: map[types.NamespacedName]uint64{}, progressing: map[types.NamespacedName]bool{},
		stirred: map[types.NamespacedName]uint64{}, checked: map[types.NamespacedName]time.Time{}}
}

// markStirred records that one of k's objects changed (its status, say).
func (d *driftMarks) markStirred(k types.NamespacedName) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seq++
	d.stirred[k] = d.seq
}

// healthSettled returns the sequence number of k's newest unchecked event
// (to hand back to healthChecked) and whether k's health, as last read,
// still holds: read within maxAge with every kind watched, and no object
// of k changed since.
func (d *driftMarks) healthSettled(k types.NamespacedName, now time.Time, maxAge time.Duration) (seen uint64, settled bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	at, ok := d.checked[k]
	return d.stirred[k], d.stirred[k] == 0 && ok && now.Sub(at) < maxAge
}

// healthChecked records a health check of k that started after event seen;
// watched says every kind of k's objects was watched (synced) before it,
// so that later changes are seen as events. Without it the check counts
// for nothing.
func (d *driftMarks) healthChecked(k types.NamespacedName, seen uint64, now time.Time, watched bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stirred[k] <= seen {
		delete(d.stirred, k)
	}
	if watched {
		d.checked[k] = now
	} else {
		delete(d.checked, k)
	}
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

// unchecked reports whether an event of k's objects arrived since its last
// health check started (healthChecked keeps only those).
func (d *driftMarks) unchecked(k types.NamespacedName) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stirred[k] != 0
}

// isProgressing reports whether k waits for its objects to become ready.
func (d *driftMarks) isProgressing(k types.NamespacedName) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.progressing[k]
}

// unsettle forgets k's last health check: a sync changed its objects, so
// the next refresh reads them whatever events have arrived by then.
func (d *driftMarks) unsettle(k types.NamespacedName) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.checked, k)
}

// forget drops k's marks.
func (d *driftMarks) forget(k types.NamespacedName) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.dirty, k)
	delete(d.progressing, k)
	delete(d.stirred, k)
	delete(d.checked, k)
}

package controller

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// Status-only passes yield to an apply. A push to a monorepo queues every
// Application that reads the repository; the changed ones go first
// (changedfirst.go), but the workers left over keep recording the new
// commit in the status of the untouched ones, a write each, and on a small
// control plane those writes slow the changed Application's dry run and
// apply (measured: 249 ms → 536 ms under 1000 status writes). So a pass
// that only records a commit waits, before its write, while an apply runs —
// for at most yieldWindow from the moment the first of the running applies
// started, after which it goes on whatever runs: the untouched
// Applications' status is late by at most that, never starved. Nor does a
// pass wait while a changed Application is still queued ahead (a commit to
// a base ten Applications share): that one needs a free worker more than
// the running apply needs a quiet API server.

// yieldWindow bounds how long status-only passes wait for applies.
const yieldWindow = time.Second

// queuedAheadTTL forgets a changed Application queued ahead that no worker
// picked up (deleted meanwhile, or its queue entry merged with another).
const queuedAheadTTL = 30 * time.Second

// applyGate is closed while an apply runs, for at most its window.
type applyGate struct {
	window time.Duration

	mu      sync.Mutex
	running int
	// closedAt is when running went from 0 to 1; opened is closed (the
	// channel) when running is back to 0.
	closedAt time.Time
	opened   chan struct{}
	// ahead are the changed Applications queued ahead and not yet picked
	// up by a worker, with when they were queued.
	ahead map[types.NamespacedName]time.Time
}

func newApplyGate() *applyGate { return &applyGate{window: yieldWindow} }

// queuedAhead records that key was queued ahead of the others.
func (g *applyGate) queuedAhead(key types.NamespacedName) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ahead == nil {
		g.ahead = map[types.NamespacedName]time.Time{}
	}
	g.ahead[key] = time.Now()
}

// picked records that a worker took key up.
func (g *applyGate) picked(key types.NamespacedName) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.ahead, key)
}

// waitingAhead says whether a changed Application queued ahead still waits
// for a worker. The caller holds g.mu.
func (g *applyGate) waitingAhead() bool {
	for key, at := range g.ahead {
		if time.Since(at) < queuedAheadTTL {
			return true
		}
		delete(g.ahead, key)
	}
	return false
}

// applying marks an apply as running until done is called.
func (g *applyGate) applying() (done func()) {
	if g == nil {
		return func() {}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.running == 0 {
		g.closedAt = time.Now()
		g.opened = make(chan struct{})
	}
	g.running++
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			g.running--
			if g.running == 0 {
				close(g.opened)
			}
		})
	}
}

// yield returns when no apply runs, the window since the gate closed has
// passed, or ctx ends; at once while a changed Application queued ahead
// waits for a worker.
func (g *applyGate) yield(ctx context.Context) {
	if g == nil {
		return
	}
	g.mu.Lock()
	if g.running == 0 || g.waitingAhead() {
		g.mu.Unlock()
		return
	}
	opened, left := g.opened, time.Until(g.closedAt.Add(g.window))
	g.mu.Unlock()
	if left <= 0 {
		return
	}
	t := time.NewTimer(left)
	defer t.Stop()
	select {
	case <-opened:
	case <-t.C:
	case <-ctx.Done():
	}
}

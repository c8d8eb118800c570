package controller

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// yielded runs g.yield in the background and reports when it returns.
func yielded(ctx context.Context, g *applyGate) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		g.yield(ctx)
		close(done)
	}()
	return done
}

func returnsSoon(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: yield did not return", what)
	}
}

func stillWaiting(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("%s: yield returned while an apply runs within the window", what)
	case <-time.After(50 * time.Millisecond):
	}
}

// TestStatusOnlyPassesYieldToApplies: a status-only pass waits while an
// apply runs, goes on when the last one ends, and never waits past the
// window or its context.
func TestStatusOnlyPassesYieldToApplies(t *testing.T) {
	g := &applyGate{window: time.Hour}
	returnsSoon(t, yielded(t.Context(), g), "no apply running")

	first := g.applying()
	second := g.applying()
	waiting := yielded(t.Context(), g)
	stillWaiting(t, waiting, "two applies")
	first()
	first() // a second call is a no-op
	stillWaiting(t, waiting, "one apply left")
	second()
	returnsSoon(t, waiting, "the applies ended")
	returnsSoon(t, yielded(t.Context(), g), "after the applies")

	done := g.applying()
	defer done()
	ctx, cancel := context.WithCancel(t.Context())
	waiting = yielded(ctx, g)
	stillWaiting(t, waiting, "before the cancel")
	cancel()
	returnsSoon(t, waiting, "its context ended")

	short := &applyGate{window: 100 * time.Millisecond}
	stuck := short.applying()
	defer stuck()
	returnsSoon(t, yielded(t.Context(), short), "the window passed")
	returnsSoon(t, yielded(t.Context(), short), "the window passed long ago")

	var none *applyGate
	none.applying()()
	none.queuedAhead(types.NamespacedName{})
	none.picked(types.NamespacedName{})
	returnsSoon(t, yielded(t.Context(), none), "no gate")
}

// TestStatusOnlyPassesDoNotHoldWorkersFromChangedOnes: while a changed
// Application queued ahead waits for a worker, a status-only pass does not
// wait for the running apply (it would keep that worker from it); once a
// worker picked it up, passes wait again.
func TestStatusOnlyPassesDoNotHoldWorkersFromChangedOnes(t *testing.T) {
	g := &applyGate{window: time.Hour}
	done := g.applying()
	defer done()
	key := types.NamespacedName{Namespace: "team-b", Name: "web"}
	g.queuedAhead(key)
	returnsSoon(t, yielded(t.Context(), g), "a changed Application waits for a worker")
	g.picked(key)
	stillWaiting(t, yielded(t.Context(), g), "it was picked up")

	g.mu.Lock()
	g.ahead[key] = time.Now().Add(-queuedAheadTTL) // never picked up: deleted meanwhile
	g.mu.Unlock()
	stillWaiting(t, yielded(t.Context(), g), "a long-forgotten entry")
}

package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/engine"
)

// A new commit cancels a stuck wait (#37, Flux 2.8's
// CancelHealthCheckOnNewRevision): while a sync waits on health, a hook
// or a wave, the Application's target revision is looked at again — at
// its interval, and at once when a webhook reports a push — and when it
// moved, the wait is given up and the new revision synced at once, instead
// of a fix waiting for --hook-timeout.

// SupersededError is the cause of a sync given up for a newer revision.
type SupersededError struct {
	// Revision is the one that arrived.
	Revision string
}

func (e *SupersededError) Error() string {
	return fmt.Sprintf("revision %s arrived while the sync waited; the wait was abandoned and the new revision is synced now", kv1.ShortSHA(e.Revision))
}

// runningSyncs are the syncs in progress, each with the channel a webhook
// push pokes.
type runningSyncs struct {
	mu    sync.Mutex
	byApp map[types.NamespacedName]chan struct{}
}

func newRunningSyncs() *runningSyncs {
	return &runningSyncs{byApp: map[types.NamespacedName]chan struct{}{}}
}

// start registers key's sync; done unregisters it.
func (s *runningSyncs) start(key types.NamespacedName) (poked <-chan struct{}, done func()) {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	s.byApp[key] = ch
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		if s.byApp[key] == ch {
			delete(s.byApp, key)
		}
		s.mu.Unlock()
	}
}

// poke tells key's running sync, if any, to look at its revision now.
func (s *runningSyncs) poke(key types.NamespacedName) {
	if s == nil {
		return
	}
	s.mu.Lock()
	ch := s.byApp[key]
	s.mu.Unlock()
	if ch != nil {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// resolver is the part of a source a watch needs.
type resolver interface {
	resolve(ctx context.Context, maxAge time.Duration) (string, error)
}

// watchForNewRevision cancels a sync (cancel, with a *SupersededError)
// when the target revision moves away from started — the revision
// resolved when the sync began — checking every interval and when poked,
// until ctx ends. A failed check is not a new revision.
func watchForNewRevision(ctx context.Context, src resolver, started string, interval time.Duration, poked <-chan struct{}, cancel context.CancelCauseFunc) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-poked:
		}
		rev, err := src.resolve(ctx, 0)
		if err != nil || rev == "" || rev == started {
			continue
		}
		cancel(&SupersededError{Revision: rev})
		return
	}
}

// abandonSync records a sync given up for a newer revision (history,
// audit line and Event say Abandoned and why) and asks for the next pass at
// once: it syncs the new revision.
func (r *ApplicationReconciler) abandonSync(ctx context.Context, app *kv1.Application, rec kv1.SyncRecord, res *engine.Result, newer *SupersededError, err error) (ctrl.Result, error) {
	log.FromContext(ctx).Info("sync abandoned for a newer revision", "revision", rec.Revision, "newer", newer.Revision, "waiting", err.Error())
	rec.Result = kv1.SyncResultAbandoned
	rec.Error = fmt.Sprintf("%s (it was waiting: %v)", newer.Error(), err)
	app.Status.ObservedGeneration = app.Generation
	r.recordSync(app, rec, res, syncEvent{Type: corev1.EventTypeNormal, Reason: kv1.ReasonSyncAbandoned, Message: rec.Error})
	setProgressing(app, newer.Error())
	return ctrl.Result{RequeueAfter: time.Millisecond}, nil
}

// superseded returns the *SupersededError that ended ctx, if one did.
func superseded(ctx context.Context) *SupersededError {
	var s *SupersededError
	if errors.As(context.Cause(ctx), &s) {
		return s
	}
	return nil
}

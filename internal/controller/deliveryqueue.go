package controller

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/util/workqueue"
)

// Delivery retry bounds: 1s, 2s, 4s … capped at a minute, six tries in
// all (about two minutes), then the failure is reported and dropped.
const (
	deliveryBaseDelay   = time.Second
	deliveryMaxDelay    = time.Minute
	deliveryMaxAttempts = 6
	// deliveryQueueLimit bounds what waits for delivery; beyond it new
	// messages are dropped (and counted), never blocking a sync.
	deliveryQueueLimit = 1000
	// deliveryNamespaceLimit bounds what one namespace may have waiting, so
	// one team's dead receivers cannot fill the queue and have every other
	// team's messages dropped.
	deliveryNamespaceLimit = 100
	// deliveryWorkers send at once, for the whole controller.
	deliveryWorkers = 4
	// deliveryNamespaceShare is how many of them one namespace may hold;
	// a namespace whose receiver timed out holds one until
	// deliverySlowPenalty has passed.
	deliveryNamespaceShare = 2
	deliverySlowPenalty    = time.Minute
	// deliveryTimeout bounds one attempt.
	deliveryTimeout = 30 * time.Second
	// deliveryShareRetry is when an item of a namespace at its share is
	// looked at again (no attempt is counted).
	deliveryShareRetry = 250 * time.Millisecond
)

// deliveryQueue sends items off the reconcile path with retry and backoff.
// A sync only enqueues (never waits); send decides, permanent tells which
// errors retrying cannot fix, and giveUp reports an item dropped. Workers
// are shared fairly: each namespace holds at most its share of them, and a
// namespace whose receiver timed out (accepts and never answers) holds one.
type deliveryQueue[T comparable] struct {
	q           workqueue.TypedRateLimitingInterface[T]
	send        func(context.Context, T) error
	permanent   func(error) bool
	giveUp      func(T, error)
	namespaceOf func(T) string
	log         logr.Logger
	workers     int
	share       int

	mu       sync.Mutex
	pending  map[T]bool     // queued and not yet delivered or given up
	queued   map[string]int // pending, per namespace
	inFlight map[string]int
	slow     map[string]time.Time // namespace → end of its penalty
	now      func() time.Time
}

func newDeliveryQueue[T comparable](name string, logger logr.Logger, send func(context.Context, T) error, permanent func(error) bool,
	giveUp func(T, error), namespaceOf func(T) string) *deliveryQueue[T] {
	return &deliveryQueue[T]{
		q: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[T](deliveryBaseDelay, deliveryMaxDelay),
			workqueue.TypedRateLimitingQueueConfig[T]{Name: name}),
		send: send, permanent: permanent, giveUp: giveUp, namespaceOf: namespaceOf, log: logger.WithValues("delivery", name),
		workers: deliveryWorkers, share: deliveryNamespaceShare,
		pending: map[T]bool{}, queued: map[string]int{}, inFlight: map[string]int{}, slow: map[string]time.Time{}, now: time.Now,
	}
}

// add queues item; false when the queue, or its namespace's part of it,
// is full.
func (d *deliveryQueue[T]) add(item T) bool {
	ns := d.namespaceOf(item)
	d.mu.Lock()
	if !d.pending[item] {
		if d.q.Len() >= deliveryQueueLimit || d.queued[ns] >= deliveryNamespaceLimit {
			d.mu.Unlock()
			return false
		}
		d.pending[item] = true
		d.queued[ns]++
	}
	d.mu.Unlock()
	d.q.Add(item)
	return true
}

// Start runs the workers until ctx ends (a manager Runnable: with leader
// election, only the leader delivers).
func (d *deliveryQueue[T]) Start(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		d.q.ShutDown()
	}()
	var wg sync.WaitGroup
	for range d.workers {
		wg.Go(func() {
			for d.next(ctx) {
			}
		})
	}
	wg.Wait()
	return nil
}

// take claims a worker for ns; false when ns holds its share already.
func (d *deliveryQueue[T]) take(ns string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	share := d.share
	if until, ok := d.slow[ns]; ok {
		if d.now().Before(until) {
			share = 1
		} else {
			delete(d.slow, ns)
		}
	}
	if d.inFlight[ns] >= share {
		return false
	}
	d.inFlight[ns]++
	return true
}

// release returns ns's worker; timedOut puts ns on a penalty.
func (d *deliveryQueue[T]) release(ns string, timedOut bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.inFlight[ns]--; d.inFlight[ns] <= 0 {
		delete(d.inFlight, ns)
	}
	if timedOut {
		d.slow[ns] = d.now().Add(deliverySlowPenalty)
	}
}

// settled marks item of ns as handled for good.
func (d *deliveryQueue[T]) settled(item T, ns string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.pending[item] {
		return
	}
	delete(d.pending, item)
	if d.queued[ns]--; d.queued[ns] <= 0 {
		delete(d.queued, ns)
	}
}

func (d *deliveryQueue[T]) next(ctx context.Context) bool {
	item, quit := d.q.Get()
	if quit {
		return false
	}
	defer d.q.Done(item)
	ns := d.namespaceOf(item)
	if !d.take(ns) {
		// ns holds its share of the workers: look again shortly, so other
		// namespaces' messages go first. Not an attempt.
		d.q.AddAfter(item, deliveryShareRetry)
		return true
	}
	sendCtx, cancel := context.WithTimeout(ctx, deliveryTimeout)
	err := d.send(sendCtx, item)
	cancel()
	d.release(ns, timedOut(err))
	switch {
	case err == nil:
		d.q.Forget(item)
		d.settled(item, ns)
	case ctx.Err() != nil:
	case d.permanent(err) || d.q.NumRequeues(item)+1 >= deliveryMaxAttempts:
		d.log.Info("delivery failed, giving up", "namespace", ns, "attempts", d.q.NumRequeues(item)+1, "error", err.Error())
		d.q.Forget(item)
		d.settled(item, ns)
		d.giveUp(item, err)
	default:
		d.log.Info("delivery failed, retrying", "namespace", ns, "attempt", d.q.NumRequeues(item)+1, "error", err.Error())
		d.q.AddRateLimited(item)
	}
	return true
}

// timedOut reports whether err is a receiver that did not answer in time.
func timedOut(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

package controller

import (
	"context"
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
)

// deliveryQueue sends items off the reconcile path with retry and backoff.
// A sync only enqueues (never waits); send decides, permanent tells which
// errors retrying cannot fix, and giveUp reports an item dropped.
type deliveryQueue[T comparable] struct {
	q         workqueue.TypedRateLimitingInterface[T]
	send      func(context.Context, T) error
	permanent func(error) bool
	giveUp    func(T, error)
	log       logr.Logger
}

func newDeliveryQueue[T comparable](name string, logger logr.Logger, send func(context.Context, T) error, permanent func(error) bool, giveUp func(T, error)) *deliveryQueue[T] {
	return &deliveryQueue[T]{
		q: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[T](deliveryBaseDelay, deliveryMaxDelay),
			workqueue.TypedRateLimitingQueueConfig[T]{Name: name}),
		send: send, permanent: permanent, giveUp: giveUp, log: logger.WithValues("delivery", name),
	}
}

// add queues item; false when the queue is full.
func (d *deliveryQueue[T]) add(item T) bool {
	if d.q.Len() >= deliveryQueueLimit {
		return false
	}
	d.q.Add(item)
	return true
}

// Start runs the worker until ctx ends (a manager Runnable: with leader
// election, only the leader delivers).
func (d *deliveryQueue[T]) Start(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		d.q.ShutDown()
	}()
	for d.next(ctx) {
	}
	return nil
}

func (d *deliveryQueue[T]) next(ctx context.Context) bool {
	item, quit := d.q.Get()
	if quit {
		return false
	}
	defer d.q.Done(item)
	sendCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := d.send(sendCtx, item)
	cancel()
	switch {
	case err == nil:
		d.q.Forget(item)
	case ctx.Err() != nil:
	case d.permanent(err) || d.q.NumRequeues(item)+1 >= deliveryMaxAttempts:
		d.log.Info("delivery failed, giving up", "attempts", d.q.NumRequeues(item)+1, "error", err.Error())
		d.q.Forget(item)
		d.giveUp(item, err)
	default:
		d.log.Info("delivery failed, retrying", "attempt", d.q.NumRequeues(item)+1, "error", err.Error())
		d.q.AddRateLimited(item)
	}
	return true
}

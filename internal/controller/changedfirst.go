package controller

import (
	"context"
	"slices"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/readset"
)

// The changed Applications first. A push to a repository that many
// Applications read queues all of them; most only need the new commit
// recorded (renderinputs.go). The first reconcile that fetches the commit
// compares, for every Application of that repository with a render keyed
// by its inputs, the inputs' values at the commit, and queues those whose
// inputs changed again at changedInputsPriority: they go before the
// others, whatever their place in the push's order, so the changed
// Application's sync does not wait for the rest of the repository.

// changedInputsPriority is the queue priority of an Application a new
// commit changed the inputs of (controller-runtime's default is 0).
const changedInputsPriority = 10

// urgentQueueSize bounds the Applications waiting to be moved ahead; more
// are queued in their push's order.
const urgentQueueSize = 4096

// changedFirst remembers the last commit of each repository whose readers
// were compared, so that a commit is compared once.
type changedFirst struct {
	mu     sync.Mutex
	last   map[string]string
	urgent chan event.GenericEvent
}

func newChangedFirst() *changedFirst {
	return &changedFirst{last: map[string]string{}, urgent: make(chan event.GenericEvent, urgentQueueSize)}
}

// claim says whether revision of repo is yet to be compared (and claims it).
func (c *changedFirst) claim(repo, revision string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last[repo] == revision {
		return false
	}
	c.last[repo] = revision
	return true
}

// prioritizeChanged queues ahead the Applications whose render inputs
// revision of repo changed, when a sync was triggered by a new revision
// (in the background: the caller's sync goes on).
func (r *ApplicationReconciler) prioritizeChanged(ctx context.Context, source openSource, trigger, repo, revision string) {
	if trigger != TriggerRevision || r.changedFirst == nil || !r.changedFirst.claim(repo, revision) {
		return
	}
	readers := r.renders.keyedReaders(repo, revision)
	if len(readers) < 2 {
		return
	}
	go func() {
		sets := make(map[string][]readset.Input, len(readers))
		for app, e := range readers {
			sets[app.String()] = e.inputs
		}
		values, err := source.inputValuesOf(revision, sets)
		if err != nil || ctx.Err() != nil {
			return // each finds out in its own reconcile
		}
		for app, e := range readers {
			v, ok := values[app.String()]
			if ok {
				r.renders.noteValues(app, e.inputs, revision, v)
			}
			if ok && slices.Equal(v, e.values) {
				continue
			}
			obj := &kv1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: app.Namespace, Name: app.Name}}
			select {
			case r.changedFirst.urgent <- event.GenericEvent{Object: obj}:
				r.applies.queuedAhead(app)
			default: // full: it syncs in its push's order
			}
		}
	}()
}

// enqueueUrgent queues an Application at changedInputsPriority.
var enqueueUrgent = handler.Funcs{
	GenericFunc: func(_ context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		req := reconcile.Request{NamespacedName: client.ObjectKeyFromObject(e.Object)}
		if pq, ok := q.(priorityqueue.PriorityQueue[reconcile.Request]); ok {
			pq.AddWithOpts(priorityqueue.AddOpts{Priority: ptr.To(changedInputsPriority)}, req)
			return
		}
		q.Add(req)
	},
}

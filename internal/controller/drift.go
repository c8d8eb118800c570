package controller

import (
	"context"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/keyless-cd/keyless/internal/engine"
)

// driftTracker watches the objects Applications manage — metadata only, in
// the managed namespaces, filtered by the keyless.dev/inventory label — and
// marks an Application dirty (and enqueues it) the moment one of its objects
// is edited or deleted by someone else. Self-heal is watch-based: it does not
// wait for the next interval.
type driftTracker struct {
	cache   cache.Cache // label-filtered, metadata-only cache of managed objects
	metrics *metrics

	mu      sync.Mutex
	ctrl    controller.Controller
	watched map[schema.GroupVersionKind]bool
	// dirty holds, per Application, the sequence number of its newest drift
	// event not yet handled. A reconcile clears only the mark it saw when it
	// started: an edit made while it applies stays marked and is healed by
	// the next reconcile instead of being forgotten.
	dirty       map[types.NamespacedName]uint64
	seq         uint64
	progressing map[types.NamespacedName]bool
	// blindChecked is when an Application with objects of unwatched kinds
	// was last re-applied to find their drift.
	blindChecked map[types.NamespacedName]time.Time
	// access, when set, is asked before a kind is watched; denied records
	// when a kind was found unwatchable, so it is asked again only after
	// accessRecheck (an admin may grant it meanwhile).
	access   *watchAccess
	denied   map[schema.GroupVersionKind]time.Time
	checking map[schema.GroupVersionKind]bool // asked about by another reconcile right now
}

// accessRecheck is how long a kind the controller may not watch is left
// unwatched before its access is asked again.
const accessRecheck = 5 * time.Minute

func newDriftTracker(c cache.Cache, m *metrics) *driftTracker {
	return &driftTracker{cache: c, metrics: m, watched: map[schema.GroupVersionKind]bool{},
		dirty: map[types.NamespacedName]uint64{}, progressing: map[types.NamespacedName]bool{}, blindChecked: map[types.NamespacedName]time.Time{},
		denied: map[schema.GroupVersionKind]time.Time{}, checking: map[schema.GroupVersionKind]bool{}}
}

// setProgressing records whether an Application waits for its objects to
// become ready: while it does, their status updates re-check its health at
// once instead of at the next poll.
func (d *driftTracker) setProgressing(k types.NamespacedName, on bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if on {
		d.progressing[k] = true
	} else {
		delete(d.progressing, k)
	}
}

func (d *driftTracker) setController(c controller.Controller) {
	d.mu.Lock()
	d.ctrl = c
	d.mu.Unlock()
}

// mark returns the sequence number of k's newest unhandled drift event, 0
// when there is none. A reconcile reads it before it reads the cluster and
// hands it back to clear when it is done.
func (d *driftTracker) mark(k types.NamespacedName) uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dirty[k]
}

// clear forgets k's drift up to seen (a value of mark): drift marked after
// that is kept, so an edit made during a sync is not lost.
func (d *driftTracker) clear(k types.NamespacedName, seen uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dirty[k] <= seen {
		delete(d.dirty, k)
	}
}

func (d *driftTracker) forget(k types.NamespacedName) {
	d.mu.Lock()
	delete(d.dirty, k)
	delete(d.progressing, k)
	delete(d.blindChecked, k)
	d.mu.Unlock()
}

// blindDue reports whether some of refs are of a kind whose watch has not
// synced — typically one the controller's Role may not list/watch — and
// interval has passed since the last such check of k. Drift of those objects
// is not seen by a watch, so it is looked for by re-applying (a dry-run per
// object; a write only where something drifted) once per interval.
func (d *driftTracker) blindDue(ctx context.Context, k types.NamespacedName, refs []engine.ObjectRef, interval time.Duration) bool {
	blind := false
	seen := map[schema.GroupVersionKind]bool{}
	for _, r := range refs {
		gvk := r.GVK()
		if seen[gvk] {
			continue
		}
		seen[gvk] = true
		if !d.synced(ctx, gvk) {
			blind = true
			break
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !blind {
		delete(d.blindChecked, k)
		return false
	}
	last, ok := d.blindChecked[k]
	if !ok {
		d.blindChecked[k] = time.Now() // just applied: the first check is one interval away
		return false
	}
	if time.Since(last) < interval {
		return false
	}
	d.blindChecked[k] = time.Now()
	return true
}

// synced reports whether the metadata informer of gvk has listed its objects.
func (d *driftTracker) synced(ctx context.Context, gvk schema.GroupVersionKind) bool {
	d.mu.Lock()
	watched := d.watched[gvk]
	d.mu.Unlock()
	if !watched {
		return false
	}
	obj := &metav1.PartialObjectMetadata{}
	obj.SetGroupVersionKind(gvk)
	inf, err := d.cache.GetInformer(ctx, obj, cache.BlockUntilSynced(false))
	return err == nil && inf.HasSynced()
}

// watch makes sure every kind in res is watched.
func (d *driftTracker) watch(ctx context.Context, res *engine.Result) {
	if res == nil {
		return
	}
	refs := make([]engine.ObjectRef, 0, len(res.Changes))
	for _, c := range res.Changes {
		refs = append(refs, c.Ref)
	}
	d.watchRefs(ctx, refs)
}

// watchRefs makes sure the kinds of refs are watched (idempotent). A kind
// the controller may not list and watch is left unwatched — its drift is
// found once per interval by blindDue — and asked about again after
// accessRecheck.
func (d *driftTracker) watchRefs(ctx context.Context, refs []engine.ObjectRef) {
	for _, gvk := range d.unwatched(refs) {
		d.checkWatch(ctx, gvk)
	}
}

// checkWatch asks whether gvk may be watched and watches it if so.
func (d *driftTracker) checkWatch(ctx context.Context, gvk schema.GroupVersionKind) {
	defer func() {
		d.mu.Lock()
		delete(d.checking, gvk)
		d.mu.Unlock()
	}()
	if d.access != nil {
		missing, err := d.access.check(ctx, gvk)
		if err != nil {
			log.FromContext(ctx).Error(err, "cannot tell whether the controller may watch managed objects; trying to watch them", "kind", gvk.String())
		} else if missing != "" {
			d.mu.Lock()
			_, known := d.denied[gvk]
			d.denied[gvk] = time.Now()
			d.mu.Unlock()
			if !known {
				log.FromContext(ctx).Info("the controller may not watch this kind: drift of these objects is looked for once per interval, by re-applying; grant list and watch in the controller's Role for immediate self-heal",
					"kind", gvk.String(), "missing", missing)
			}
			return
		}
	}
	d.startWatch(ctx, gvk)
}

// unwatched returns the kinds of refs that are neither watched, nor being
// asked about by another reconcile, nor recently found unwatchable; the
// caller must checkWatch each of them.
func (d *driftTracker) unwatched(refs []engine.ObjectRef) []schema.GroupVersionKind {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ctrl == nil {
		return nil
	}
	var out []schema.GroupVersionKind
	seen := map[schema.GroupVersionKind]bool{}
	for _, r := range refs {
		gvk := r.GVK()
		if seen[gvk] || d.watched[gvk] || d.checking[gvk] {
			continue
		}
		seen[gvk] = true
		if at, ok := d.denied[gvk]; ok && time.Since(at) < accessRecheck {
			continue
		}
		d.checking[gvk] = true
		out = append(out, gvk)
	}
	return out
}

// startWatch adds an informer-backed watch of gvk to the controller, once.
func (d *driftTracker) startWatch(ctx context.Context, gvk schema.GroupVersionKind) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.watched[gvk] {
		return
	}
	obj := &metav1.PartialObjectMetadata{}
	obj.SetGroupVersionKind(gvk)
	if err := d.ctrl.Watch(source.Kind(d.cache, obj, d.handler())); err != nil {
		log.FromContext(ctx).Error(err, "cannot watch managed objects; drift of this kind is looked for once per interval, by re-applying", "kind", gvk.String())
		return
	}
	delete(d.denied, gvk)
	d.watched[gvk] = true
}

// handler turns events of managed objects into reconciles: an edit of spec,
// labels or annotations by someone other than keyless, or a deletion, marks
// the owning Application dirty (drift); any other update (status) re-checks an
// Application whose objects are still rolling out. The informer's initial
// list is ignored.
func (d *driftTracker) handler() handler.TypedEventHandler[*metav1.PartialObjectMetadata, reconcile.Request] {
	return handler.TypedFuncs[*metav1.PartialObjectMetadata, reconcile.Request]{
		UpdateFunc: func(_ context.Context, e event.TypedUpdateEvent[*metav1.PartialObjectMetadata], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			k, ok := owner(e.ObjectNew)
			if !ok {
				return
			}
			if isDrift(e.ObjectOld, e.ObjectNew) {
				d.markDirty(k)
				q.Add(reconcile.Request{NamespacedName: k})
				return
			}
			d.mu.Lock()
			progressing := d.progressing[k]
			d.mu.Unlock()
			if progressing {
				q.Add(reconcile.Request{NamespacedName: k})
			}
		},
		DeleteFunc: func(_ context.Context, e event.TypedDeleteEvent[*metav1.PartialObjectMetadata], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if k, ok := owner(e.Object); ok {
				d.markDirty(k)
				q.Add(reconcile.Request{NamespacedName: k})
			}
		},
	}
}

func (d *driftTracker) markDirty(k types.NamespacedName) {
	d.mu.Lock()
	d.seq++
	d.dirty[k] = d.seq
	d.mu.Unlock()
	d.metrics.driftEvents.Inc()
}

// owner is the Application an object belongs to (its inventory label).
func owner(o *metav1.PartialObjectMetadata) (types.NamespacedName, bool) {
	name := o.GetLabels()[engine.InventoryLabel]
	return types.NamespacedName{Namespace: o.GetNamespace(), Name: name}, name != ""
}

// isDrift reports a change of spec (generation), labels or annotations made by
// someone other than keyless. Status-only updates (rollouts) are not drift.
func isDrift(o, n *metav1.PartialObjectMetadata) bool {
	changed := n.GetGeneration() != o.GetGeneration() ||
		(n.GetGeneration() == 0 && n.GetResourceVersion() != o.GetResourceVersion()) ||
		!equalMaps(n.GetLabels(), o.GetLabels()) || !equalMaps(n.GetAnnotations(), o.GetAnnotations())
	return changed && lastWriter(n) != engine.FieldManager
}

// lastWriter is the field manager of the newest managedFields entry ("" on a tie).
func lastWriter(o metav1.Object) string {
	var newest *metav1.ManagedFieldsEntry
	tie := false
	for i, mf := range o.GetManagedFields() {
		if mf.Time == nil {
			continue
		}
		switch {
		case newest == nil || mf.Time.After(newest.Time.Time):
			newest, tie = &o.GetManagedFields()[i], false
		case mf.Time.Equal(newest.Time) && mf.Manager != newest.Manager:
			tie = true
		}
	}
	if newest == nil || tie {
		return ""
	}
	return newest.Manager
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

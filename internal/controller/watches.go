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

// watchRegistry watches the kinds of managed objects — metadata only, in the
// managed namespaces, filtered by the keyless.dev/inventory label — once
// each, after asking whether the controller may (access), backing off from
// kinds it may not, and never asking twice at once. Events go to marks.
type watchRegistry struct {
	cache  cache.Cache // label-filtered, metadata-only cache of managed objects
	access *watchAccess
	marks  *driftMarks
	// applied tells which labels and annotations of an object are keyless's.
	applied *appliedKeys

	mu      sync.Mutex
	ctrl    controller.Controller
	watched map[schema.GroupVersionKind]bool
	// denied records when a kind was found unwatchable, so it is asked
	// again only after accessRecheck (an admin may grant it meanwhile).
	denied   map[schema.GroupVersionKind]time.Time
	checking map[schema.GroupVersionKind]bool // asked about by another reconcile right now
}

// accessRecheck is how long a kind the controller may not watch is left
// unwatched before its access is asked again.
const accessRecheck = 5 * time.Minute

func newWatchRegistry(c cache.Cache, access *watchAccess, marks *driftMarks) *watchRegistry {
	return &watchRegistry{cache: c, access: access, marks: marks, applied: newAppliedKeys(), watched: map[schema.GroupVersionKind]bool{},
		denied: map[schema.GroupVersionKind]time.Time{}, checking: map[schema.GroupVersionKind]bool{}}
}

func (d *watchRegistry) setController(c controller.Controller) {
	d.mu.Lock()
	d.ctrl = c
	d.mu.Unlock()
}

// synced reports whether the metadata informer of gvk has listed its objects.
func (d *watchRegistry) synced(ctx context.Context, gvk schema.GroupVersionKind) bool {
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

// allSynced reports whether every kind of refs is watched and listed: from
// then on every change of those objects arrives as an event.
func (d *watchRegistry) allSynced(ctx context.Context, refs []engine.ObjectRef) bool {
	return allKindsSynced(ctx, refs, d.synced)
}

// allKindsSynced reports whether synced holds for every kind of refs
// (each kind asked once).
func allKindsSynced(ctx context.Context, refs []engine.ObjectRef, synced func(context.Context, schema.GroupVersionKind) bool) bool {
	seen := map[schema.GroupVersionKind]bool{}
	for _, r := range refs {
		gvk := r.GVK()
		if seen[gvk] {
			continue
		}
		seen[gvk] = true
		if !synced(ctx, gvk) {
			return false
		}
	}
	return true
}

// watch makes sure every kind in res is watched.
func (d *watchRegistry) watch(ctx context.Context, res *engine.Result) {
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
func (d *watchRegistry) watchRefs(ctx context.Context, refs []engine.ObjectRef) {
	for _, gvk := range d.unwatched(refs) {
		d.checkWatch(ctx, gvk)
	}
}

// checkWatch asks whether gvk may be watched and watches it if so.
func (d *watchRegistry) checkWatch(ctx context.Context, gvk schema.GroupVersionKind) {
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
func (d *watchRegistry) unwatched(refs []engine.ObjectRef) []schema.GroupVersionKind {
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
func (d *watchRegistry) startWatch(ctx context.Context, gvk schema.GroupVersionKind) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.watched[gvk] {
		return
	}
	obj := &metav1.PartialObjectMetadata{}
	obj.SetGroupVersionKind(gvk)
	if err := d.ctrl.Watch(source.Kind(d.cache, obj, d.handler(gvk))); err != nil {
		log.FromContext(ctx).Error(err, "cannot watch managed objects; drift of this kind is looked for once per interval, by re-applying", "kind", gvk.String())
		return
	}
	delete(d.denied, gvk)
	d.watched[gvk] = true
}

// handler turns events of managed objects of gvk into reconciles: an edit of
// spec, or of labels or annotations keyless applied, by someone other than
// keyless, or a deletion, marks
// the owning Application dirty (drift); any other update (status) re-checks an
// Application whose objects are still rolling out. The informer's initial
// list is ignored.
func (d *watchRegistry) handler(gvk schema.GroupVersionKind) handler.TypedEventHandler[*metav1.PartialObjectMetadata, reconcile.Request] {
	return handler.TypedFuncs[*metav1.PartialObjectMetadata, reconcile.Request]{
		UpdateFunc: func(_ context.Context, e event.TypedUpdateEvent[*metav1.PartialObjectMetadata], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			k, ok := owner(e.ObjectNew)
			if !ok {
				return
			}
			d.marks.markStirred(k)
			var keys *metaKeys
			if applied, ok := d.applied.of(k, gvk, e.ObjectNew.GetName()); ok {
				keys = &applied
			}
			if isDrift(e.ObjectOld, e.ObjectNew, keys) {
				d.marks.markDirty(k)
				q.Add(reconcile.Request{NamespacedName: k})
				return
			}
			if d.marks.isProgressing(k) {
				q.Add(reconcile.Request{NamespacedName: k})
			}
		},
		DeleteFunc: func(_ context.Context, e event.TypedDeleteEvent[*metav1.PartialObjectMetadata], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if k, ok := owner(e.Object); ok {
				d.marks.markStirred(k)
				d.marks.markDirty(k)
				q.Add(reconcile.Request{NamespacedName: k})
			}
		},
	}
}

// owner is the Application an object belongs to (its inventory label).
// Hooks carry that label too but are not managed state: their runs come
// and go with each sync (and their delete policies), so they never drift.
func owner(o *metav1.PartialObjectMetadata) (types.NamespacedName, bool) {
	labels := o.GetLabels()
	name := labels[engine.InventoryLabel]
	if _, hook := labels[engine.HookLabel]; hook {
		return types.NamespacedName{}, false
	}
	return types.NamespacedName{Namespace: o.GetNamespace(), Name: name}, name != ""
}

// isDrift reports a change of spec (generation, or any change of a kind
// without one), or of the labels and annotations keyless applied (keys; any
// of them when nil: not known), made by someone other than keyless.
// Status-only updates (rollouts) are not drift, nor a key keyless does not
// set (kube-controller-manager writes deployment.kubernetes.io/revision
// through the status subresource).
//
// Who made a change is the newest managedFields entry that could have made
// it: a status-subresource entry cannot change the spec, so it does not
// count for a spec change. Entries are stamped to the second, and
// kube-controller-manager updates a Deployment's status within
// milliseconds of keyless's apply: counting it made every rollout look
// like drift.
func isDrift(o, n *metav1.PartialObjectMetadata, keys *metaKeys) bool {
	var labels, annotations map[string]struct{}
	if keys != nil {
		labels, annotations = keys.labels, keys.annotations
	}
	spec := n.GetGeneration() != o.GetGeneration() ||
		(n.GetGeneration() == 0 && n.GetResourceVersion() != o.GetResourceVersion())
	metadata := changedWithin(o.GetLabels(), n.GetLabels(), labels) || changedWithin(o.GetAnnotations(), n.GetAnnotations(), annotations)
	return (spec && lastWriter(n, false) != engine.FieldManager) ||
		(metadata && lastWriter(n, true) != engine.FieldManager)
}

// keepWritersOnly is the metadata cache's transform: it drops each
// managedFields entry's field set (FieldsV1, most of an object's metadata:
// about 1–3 KiB per manager of a Deployment) and keeps who wrote and when,
// all that lastWriter reads. Measured at 1000 Applications in
// docs/benchmarks.md.
func keepWritersOnly(obj any) (any, error) {
	if o, ok := obj.(metav1.Object); ok {
		mf := o.GetManagedFields()
		for i := range mf {
			mf[i].FieldsV1 = nil
		}
	}
	return obj, nil
}

// dropManagedFields is the Application cache's transform: nothing reads an
// Application's managedFields, and they were its largest part in the cache
// (the field sets of its status: about 2 KiB per Application, measured at
// 1000 in docs/benchmarks.md). Merge patches are computed between two copies
// of the cached object, so they never carry the field either.
func dropManagedFields(obj any) (any, error) {
	if o, ok := obj.(metav1.Object); ok {
		o.SetManagedFields(nil)
	}
	return obj, nil
}

// lastWriter is the field manager of the newest managedFields entry ("" on
// a tie), status-subresource entries counted only when withStatus is set.
func lastWriter(o metav1.Object, withStatus bool) string {
	var newest *metav1.ManagedFieldsEntry
	tie := false
	for i, mf := range o.GetManagedFields() {
		if mf.Time == nil || (!withStatus && mf.Subresource == statusSubresource) {
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

// statusSubresource is the managedFields subresource of status writes.
const statusSubresource = "status"

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

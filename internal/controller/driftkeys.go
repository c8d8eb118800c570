package controller

import (
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/keyless-cd/keyless/internal/engine"
)

// appliedKeys remembers, for each managed object, the label and annotation
// keys keyless last applied to it. A change to any other key is not drift:
// server-side apply would leave it as it is (kube-controller-manager's
// deployment.kubernetes.io/revision on every new Deployment, a team's own
// annotation). Without this, every rollout looked like drift and cost a
// second sync per Application. Objects applied before a restart are not
// known until their next sync: until then every key counts.
type appliedKeys struct {
	mu    sync.Mutex
	byApp map[types.NamespacedName]map[objectKey]metaKeys
}

// objectKey names a managed object within its Application's namespace.
type objectKey struct {
	group, kind, name string
}

// metaKeys are the label and annotation keys keyless applied to one object.
type metaKeys struct {
	labels, annotations map[string]struct{}
}

func newAppliedKeys() *appliedKeys {
	return &appliedKeys{byApp: map[types.NamespacedName]map[objectKey]metaKeys{}}
}

// record replaces what app's objects carry with objs (the set being applied):
// their own labels and annotations plus the labels the engine adds.
func (a *appliedKeys) record(app types.NamespacedName, objs []*unstructured.Unstructured) {
	byObj := make(map[objectKey]metaKeys, len(objs))
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		k := metaKeys{labels: keySet(o.GetLabels()), annotations: keySet(o.GetAnnotations())}
		k.labels[engine.ManagedByLabel] = struct{}{}
		k.labels[engine.InventoryLabel] = struct{}{}
		byObj[objectKey{group: gvk.Group, kind: gvk.Kind, name: o.GetName()}] = k
	}
	a.mu.Lock()
	a.byApp[app] = byObj
	a.mu.Unlock()
}

// of returns the keys applied to the object of gvk and name in app, and
// whether they are known.
func (a *appliedKeys) of(app types.NamespacedName, gvk schema.GroupVersionKind, name string) (metaKeys, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	k, ok := a.byApp[app][objectKey{group: gvk.Group, kind: gvk.Kind, name: name}]
	return k, ok
}

// forget drops app's objects.
func (a *appliedKeys) forget(app types.NamespacedName) {
	a.mu.Lock()
	delete(a.byApp, app)
	a.mu.Unlock()
}

func keySet(m map[string]string) map[string]struct{} {
	out := make(map[string]struct{}, len(m)+2)
	for k := range m {
		out[k] = struct{}{}
	}
	return out
}

// changedWithin reports whether a and b differ in any key of keys, or in
// any key at all when keys is nil (not known).
func changedWithin(a, b map[string]string, keys map[string]struct{}) bool {
	if keys == nil {
		return !equalMaps(a, b)
	}
	for k := range keys {
		av, aok := a[k]
		bv, bok := b[k]
		if aok != bok || av != bv {
			return true
		}
	}
	return false
}

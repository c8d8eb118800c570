package controller

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/keyless-cd/keyless/internal/engine"
)

func TestKeepWritersOnlyDropsFieldSetsKeepsTheLastWriter(t *testing.T) {
	now := metav1.NewTime(time.Now())
	earlier := metav1.NewTime(now.Add(-time.Minute))
	fields := metav1.NewFieldsV1(`{"f:spec":{"f:replicas":{}}}`)
	o := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: "web", ManagedFields: []metav1.ManagedFieldsEntry{
		{Manager: "keyless", Time: &earlier, FieldsV1: fields},
		{Manager: "kubectl-edit", Time: &now, FieldsV1: fields},
	}}}
	got, err := keepWritersOnly(o)
	if err != nil {
		t.Fatal(err)
	}
	m := got.(*metav1.PartialObjectMetadata)
	for _, mf := range m.ManagedFields {
		if mf.FieldsV1 != nil {
			t.Errorf("%s keeps its field set", mf.Manager)
		}
	}
	if w := lastWriter(m, true); w != "kubectl-edit" {
		t.Errorf("last writer %q after the transform", w)
	}
	tomb := cache.DeletedFinalStateUnknown{Key: "ns/web"}
	if got, err := keepWritersOnly(tomb); err != nil || got != tomb {
		t.Errorf("a tombstone is not passed through: %v %v", got, err)
	}
}

func TestIsDrift(t *testing.T) {
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	entry := func(manager, subresource string) metav1.ManagedFieldsEntry {
		return metav1.ManagedFieldsEntry{Manager: manager, Time: &now, Subresource: subresource}
	}
	obj := func(gen int64, rv string, annotations map[string]string, writers ...metav1.ManagedFieldsEntry) *metav1.PartialObjectMetadata {
		return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: "web", Generation: gen, ResourceVersion: rv,
			Labels: map[string]string{engine.InventoryLabel: "web"}, Annotations: annotations, ManagedFields: writers}}
	}
	known := &metaKeys{labels: map[string]struct{}{engine.InventoryLabel: {}}, annotations: map[string]struct{}{"team/note": {}}}
	revision := map[string]string{"deployment.kubernetes.io/revision": "2"}
	for _, c := range []struct {
		name string
		o, n *metav1.PartialObjectMetadata
		keys *metaKeys
		want bool
	}{
		{"keyless's spec change, kube-controller-manager's status in the same second",
			obj(1, "1", nil), obj(2, "2", nil, entry(engine.FieldManager, ""), entry("kube-controller-manager", statusSubresource)), known, false},
		{"someone else's spec change", obj(1, "1", nil), obj(2, "2", nil, entry(engine.FieldManager, ""), entry("kubectl-edit", "")), known, true},
		{"the revision annotation through status, keys known",
			obj(1, "1", nil), obj(1, "2", revision, entry(engine.FieldManager, ""), entry("kube-controller-manager", statusSubresource)), known, false},
		{"the revision annotation, keys not known (after a restart)",
			obj(1, "1", nil), obj(1, "2", revision, entry(engine.FieldManager, ""), entry("kube-controller-manager", statusSubresource)), nil, true},
		{"an annotation keyless applied, changed by someone else (through status)",
			obj(1, "1", map[string]string{"team/note": "a"}), obj(1, "2", map[string]string{"team/note": "b"}, entry(engine.FieldManager, ""), entry("kubectl-annotate", statusSubresource)), known, true},
		{"a status update only", obj(3, "1", nil), obj(3, "2", nil, entry(engine.FieldManager, ""), entry("kube-controller-manager", statusSubresource)), known, false},
		{"a kind without generation, status written", obj(0, "1", nil), obj(0, "2", nil, entry(engine.FieldManager, ""), entry("kube-controller-manager", statusSubresource)), known, false},
		{"a kind without generation, edited", obj(0, "1", nil), obj(0, "2", nil, entry(engine.FieldManager, ""), entry("kubectl-edit", "")), known, true},
	} {
		if got := isDrift(c.o, c.n, c.keys); got != c.want {
			t.Errorf("%s: isDrift %v, want %v", c.name, got, c.want)
		}
	}
}

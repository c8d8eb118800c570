package controller

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
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
	if w := lastWriter(m); w != "kubectl-edit" {
		t.Errorf("last writer %q after the transform", w)
	}
	tomb := cache.DeletedFinalStateUnknown{Key: "ns/web"}
	if got, err := keepWritersOnly(tomb); err != nil || got != tomb {
		t.Errorf("a tombstone is not passed through: %v %v", got, err)
	}
}

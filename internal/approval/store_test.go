package approval

import (
	"errors"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestRecordRoundTrip(t *testing.T) {
	b := NewBundle([]*unstructured.Unstructured{clusterRole("reader", "get")})
	d, err := b.Digest()
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	r := &Record{Namespace: "team", Application: "app", Digest: d, Revision: "abc", Approver: "bob", At: at, SelfApproved: true, Bundle: b}
	cm, err := r.ConfigMap("keyless-system")
	if err != nil {
		t.Fatal(err)
	}
	if cm.Namespace != "keyless-system" || cm.Name != RecordName("team", "app") {
		t.Fatalf("stored as %s/%s", cm.Namespace, cm.Name)
	}
	got, err := RecordFromConfigMap(cm, "team", "app")
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != d || got.Approver != "bob" || !got.At.Equal(at) || !got.SelfApproved || len(got.Bundle.Objects) != 1 {
		t.Fatalf("read back %+v", got)
	}

	t.Run("another Application's record is refused", func(t *testing.T) {
		if _, err := RecordFromConfigMap(cm, "team", "other"); !errors.Is(err, ErrForeign) {
			t.Fatalf("err = %v, want ErrForeign", err)
		}
		moved := cm.DeepCopy()
		moved.Annotations[NamespaceAnnotation] = "evil"
		if _, err := RecordFromConfigMap(moved, "team", "app"); !errors.Is(err, ErrForeign) {
			t.Fatalf("err = %v, want ErrForeign", err)
		}
	})
	t.Run("objects that do not hash to the digest are refused", func(t *testing.T) {
		forged := cm.DeepCopy()
		other, _ := NewBundle([]*unstructured.Unstructured{clusterRole("reader", "*")}).Encode()
		forged.BinaryData[keyObjects] = other
		if _, err := RecordFromConfigMap(forged, "team", "app"); !errors.Is(err, ErrDigestMismatch) {
			t.Fatalf("err = %v, want ErrDigestMismatch", err)
		}
	})
	t.Run("a pending bundle is not a record", func(t *testing.T) {
		p := &Pending{Namespace: "team", Application: "app", Digest: d, Revision: "abc", Author: "a <a@x>", Since: at, Bundle: b}
		pcm, err := p.ConfigMap("keyless-system")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := RecordFromConfigMap(pcm, "team", "app"); !errors.Is(err, ErrForeign) {
			t.Fatalf("err = %v, want ErrForeign", err)
		}
		got, err := PendingFromConfigMap(pcm, "team", "app")
		if err != nil || got.Author != "a <a@x>" || got.Digest != d {
			t.Fatalf("pending read back %+v, %v", got, err)
		}
	})
}

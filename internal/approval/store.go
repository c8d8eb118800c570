package approval

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The stored forms live as ConfigMaps in the controller's own namespace:
// the approver (who may write cluster-scoped objects) can write them and
// the controller can read them, but the admin of the Application's
// namespace cannot (docs/security.md). One record and at most one pending
// bundle per Application, named by a hash of namespace/name and
// annotated with both, so a name collision or a copied ConfigMap is
// refused, not trusted.
const (
	// KindLabel is on every stored form: KindRecord or KindPending.
	KindLabel   = "keyless.dev/approval"
	KindRecord  = "record"
	KindPending = "pending"
	// NamespaceAnnotation and ApplicationAnnotation name the Application
	// a stored form belongs to.
	NamespaceAnnotation   = "keyless.dev/approval-namespace"
	ApplicationAnnotation = "keyless.dev/approval-application"

	// Keys of the data.
	keyDigest       = "digest"
	keyRevision     = "revision"
	keyApprover     = "approver"
	keyAt           = "approvedAt"
	keySelfApproved = "selfApproved"
	keyAuthor       = "author"
	keySince        = "since"
	// keyObjects (binaryData) is the bundle's stored form (Encode).
	keyObjects = "objects.json.gz"
)

// ErrForeign is returned (wrapped) for a stored form that does not belong
// to the Application it was read for, or says it is something else.
var ErrForeign = errors.New("approval record belongs to another Application")

// RecordName is the name of the ConfigMap holding the approval record of
// Application namespace/name.
func RecordName(namespace, name string) string {
	return "keyless-approval-" + nameHash(namespace, name)
}

// PendingName is the name of the ConfigMap holding the bundle that waits
// for approval.
func PendingName(namespace, name string) string {
	return "keyless-approval-pending-" + nameHash(namespace, name)
}

func nameHash(namespace, name string) string {
	sum := sha256.Sum256([]byte(namespace + "/" + name))
	return hex.EncodeToString(sum[:])[:20]
}

// Record is one approval: who approved which objects for which
// Application, when, and the objects themselves (what the next approval
// compares with, and deletes from when they leave the render).
type Record struct {
	Namespace, Application string
	// Digest of Bundle; Revision the approval was given for.
	Digest, Revision string
	// Approver as the API server named them (SelfSubjectReview).
	Approver string
	At       time.Time
	// SelfApproved: the approver was the commit's author, allowed by
	// spec.syncPolicy.approval.allowSelfApproval.
	SelfApproved bool
	Bundle       *Bundle
}

// ConfigMap is the record's stored form in namespace.
func (r *Record) ConfigMap(namespace string) (*corev1.ConfigMap, error) {
	data, err := r.Bundle.Encode()
	if err != nil {
		return nil, err
	}
	return &corev1.ConfigMap{
		ObjectMeta: storedMeta(namespace, RecordName(r.Namespace, r.Application), KindRecord, r.Namespace, r.Application),
		Data: map[string]string{
			keyDigest: r.Digest, keyRevision: r.Revision, keyApprover: r.Approver,
			keyAt: r.At.UTC().Format(time.RFC3339), keySelfApproved: strconv.FormatBool(r.SelfApproved),
		},
		BinaryData: map[string][]byte{keyObjects: data},
	}, nil
}

// RecordFromConfigMap reads a stored record of Application
// namespace/name, refusing one of another Application or whose objects
// do not hash to its digest.
func RecordFromConfigMap(cm *corev1.ConfigMap, namespace, name string) (*Record, error) {
	if err := belongs(cm, KindRecord, namespace, name); err != nil {
		return nil, err
	}
	at, err := time.Parse(time.RFC3339, cm.Data[keyAt])
	if err != nil {
		return nil, fmt.Errorf("approval record %s: %s: %w", cm.Name, keyAt, err)
	}
	r := &Record{Namespace: namespace, Application: name, Digest: cm.Data[keyDigest], Revision: cm.Data[keyRevision],
		Approver: cm.Data[keyApprover], At: at, SelfApproved: cm.Data[keySelfApproved] == "true"}
	if r.Digest == "" || r.Approver == "" {
		return nil, fmt.Errorf("approval record %s: no %s or %s", cm.Name, keyDigest, keyApprover)
	}
	if r.Bundle, err = Decode(cm.BinaryData[keyObjects], r.Digest); err != nil {
		return nil, fmt.Errorf("approval record %s: %w", cm.Name, err)
	}
	return r, nil
}

// Pending is a bundle waiting for approval: the revision it comes from and
// the author of its commit (whom four eyes exclude).
type Pending struct {
	Namespace, Application string
	Digest, Revision       string
	Author                 string
	Since                  time.Time
	Bundle                 *Bundle
}

// ConfigMap is the pending bundle's stored form in namespace.
func (p *Pending) ConfigMap(namespace string) (*corev1.ConfigMap, error) {
	data, err := p.Bundle.Encode()
	if err != nil {
		return nil, err
	}
	return &corev1.ConfigMap{
		ObjectMeta: storedMeta(namespace, PendingName(p.Namespace, p.Application), KindPending, p.Namespace, p.Application),
		Data: map[string]string{
			keyDigest: p.Digest, keyRevision: p.Revision, keyAuthor: p.Author,
			keySince: p.Since.UTC().Format(time.RFC3339),
		},
		BinaryData: map[string][]byte{keyObjects: data},
	}, nil
}

// PendingFromConfigMap reads a stored pending bundle of Application
// namespace/name, checked as RecordFromConfigMap checks a record.
func PendingFromConfigMap(cm *corev1.ConfigMap, namespace, name string) (*Pending, error) {
	if err := belongs(cm, KindPending, namespace, name); err != nil {
		return nil, err
	}
	since, err := time.Parse(time.RFC3339, cm.Data[keySince])
	if err != nil {
		return nil, fmt.Errorf("pending approval %s: %s: %w", cm.Name, keySince, err)
	}
	p := &Pending{Namespace: namespace, Application: name, Digest: cm.Data[keyDigest], Revision: cm.Data[keyRevision],
		Author: cm.Data[keyAuthor], Since: since}
	if p.Digest == "" {
		return nil, fmt.Errorf("pending approval %s: no %s", cm.Name, keyDigest)
	}
	if p.Bundle, err = Decode(cm.BinaryData[keyObjects], p.Digest); err != nil {
		return nil, fmt.Errorf("pending approval %s: %w", cm.Name, err)
	}
	return p, nil
}

func storedMeta(namespace, name, kind, appNamespace, app string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: name, Namespace: namespace,
		Labels: map[string]string{KindLabel: kind, "app.kubernetes.io/managed-by": "keyless"},
		Annotations: map[string]string{
			NamespaceAnnotation: appNamespace, ApplicationAnnotation: app,
		},
	}
}

func belongs(cm *corev1.ConfigMap, kind, namespace, name string) error {
	want := RecordName(namespace, name)
	if kind == KindPending {
		want = PendingName(namespace, name)
	}
	if cm.Name != want || cm.Labels[KindLabel] != kind ||
		cm.Annotations[NamespaceAnnotation] != namespace || cm.Annotations[ApplicationAnnotation] != name {
		return fmt.Errorf("%w: ConfigMap %s is not the %s of Application %s/%s", ErrForeign, cm.Name, kind, namespace, name)
	}
	return nil
}

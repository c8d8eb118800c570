// Package approval holds what the approval of out-of-namespace objects
// (#36: spec.syncPolicy.outOfNamespace: approve) is made of, apart from any
// cluster: the set of objects a person approves (a Bundle), its digest,
// what changed since the last approval, and the bounded encoding both the
// pending set and the approval record are stored in.
//
// Everything here is pure: the controller and `keyless approve` read and
// write the stored forms; a stored bundle is hostile input (its size,
// depth and object count are bounded before it is decoded).
package approval

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Limits bound a stored bundle.
const (
	// MaxEncodedBytes bounds the gzip'd bundle: it is kept in one
	// ConfigMap (1 MiB), with room for its metadata.
	MaxEncodedBytes = 900 << 10
	// MaxDecodedBytes bounds the bundle once unzipped (a CRD-heavy chart
	// such as kube-prometheus-stack is a few MiB of JSON).
	MaxDecodedBytes = 32 << 20
	// MaxObjects bounds how many objects one approval covers.
	MaxObjects = 2000
)

// ErrTooLarge is returned (wrapped) when a bundle breaks a limit.
var ErrTooLarge = errors.New("approval bundle too large")

// Bundle is the set of out-of-namespace objects of one render, in a stable
// order (Sort): what a person approves as a whole.
type Bundle struct {
	Objects []*unstructured.Unstructured
}

// NewBundle returns a bundle of deep copies of objs, sorted.
func NewBundle(objs []*unstructured.Unstructured) *Bundle {
	b := &Bundle{Objects: make([]*unstructured.Unstructured, len(objs))}
	for i, o := range objs {
		b.Objects[i] = o.DeepCopy()
	}
	b.Sort()
	return b
}

// Key is an object's identity in a bundle: group/Kind/namespace/name.
func Key(o *unstructured.Unstructured) string {
	gvk := o.GroupVersionKind()
	return gvk.Group + "/" + gvk.Kind + "/" + o.GetNamespace() + "/" + o.GetName()
}

// Ref is how an object is named to people: Kind/name, with its namespace
// when it has one ("ConfigMap/x (namespace kube-system)").
func Ref(o *unstructured.Unstructured) string {
	s := o.GetKind() + "/" + o.GetName()
	if ns := o.GetNamespace(); ns != "" {
		s += " (namespace " + ns + ")"
	}
	return s
}

// Sort orders the objects by Key: CustomResourceDefinitions keep no
// special place here (apply order is the applier's business).
func (b *Bundle) Sort() {
	sort.SliceStable(b.Objects, func(i, j int) bool { return Key(b.Objects[i]) < Key(b.Objects[j]) })
}

// Refs names each object (Ref), in the bundle's order.
func (b *Bundle) Refs() []string {
	out := make([]string, len(b.Objects))
	for i, o := range b.Objects {
		out[i] = Ref(o)
	}
	return out
}

// Digest is "sha256:<hex>" of the bundle's canonical JSON (objects sorted,
// keys sorted by encoding/json): two renders with the same out-of-namespace
// objects have the same digest whatever order they came in. The empty
// bundle has a digest too (approving the removal of every object).
func (b *Bundle) Digest() (string, error) {
	c := NewBundle(b.Objects)
	raw, err := c.canonical()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(raw)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

func (b *Bundle) canonical() ([]byte, error) {
	items := make([]map[string]any, len(b.Objects))
	for i, o := range b.Objects {
		items[i] = o.Object
	}
	raw, err := json.Marshal(items)
	if err != nil {
		return nil, fmt.Errorf("encoding the out-of-namespace objects: %w", err)
	}
	return raw, nil
}

// Encode is the stored form: the canonical JSON, gzip'd, at most
// MaxEncodedBytes.
func (b *Bundle) Encode() ([]byte, error) {
	if len(b.Objects) > MaxObjects {
		return nil, fmt.Errorf("%w: %d objects (at most %d)", ErrTooLarge, len(b.Objects), MaxObjects)
	}
	c := NewBundle(b.Objects)
	raw, err := c.canonical()
	if err != nil {
		return nil, err
	}
	if len(raw) > MaxDecodedBytes {
		return nil, fmt.Errorf("%w: %d bytes of objects (at most %d)", ErrTooLarge, len(raw), MaxDecodedBytes)
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := zw.Write(raw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if buf.Len() > MaxEncodedBytes {
		return nil, fmt.Errorf("%w: %d bytes compressed (at most %d)", ErrTooLarge, buf.Len(), MaxEncodedBytes)
	}
	return buf.Bytes(), nil
}

// Decode reads a stored bundle, refusing one beyond the limits, and checks
// it against digest (when not ""): a bundle that does not hash to the
// digest it was stored with is refused, not trusted.
func Decode(data []byte, digest string) (*Bundle, error) {
	if len(data) > MaxEncodedBytes {
		return nil, fmt.Errorf("%w: %d bytes compressed (at most %d)", ErrTooLarge, len(data), MaxEncodedBytes)
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("reading the approval bundle: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, MaxDecodedBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading the approval bundle: %w", err)
	}
	if len(raw) > MaxDecodedBytes {
		return nil, fmt.Errorf("%w: more than %d bytes of objects", ErrTooLarge, MaxDecodedBytes)
	}
	var items []map[string]any
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("reading the approval bundle: %w", err)
	}
	if len(items) > MaxObjects {
		return nil, fmt.Errorf("%w: %d objects (at most %d)", ErrTooLarge, len(items), MaxObjects)
	}
	b := &Bundle{Objects: make([]*unstructured.Unstructured, 0, len(items))}
	for i, it := range items {
		o := &unstructured.Unstructured{Object: it}
		if o.GetKind() == "" || o.GetAPIVersion() == "" || o.GetName() == "" {
			return nil, fmt.Errorf("reading the approval bundle: object %d has no apiVersion, kind or name", i)
		}
		b.Objects = append(b.Objects, o)
	}
	b.Sort()
	if digest != "" {
		got, err := b.Digest()
		if err != nil {
			return nil, err
		}
		if got != digest {
			return nil, fmt.Errorf("%w: the stored objects hash to %s, not %s", ErrDigestMismatch, got, digest)
		}
	}
	return b, nil
}

// ErrDigestMismatch is returned (wrapped) when a stored bundle does not
// hash to its recorded digest.
var ErrDigestMismatch = errors.New("approval bundle digest mismatch")

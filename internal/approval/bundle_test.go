package approval

import (
	"bytes"
	"compress/gzip"
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func obj(apiVersion, kind, ns, name string, extra map[string]any) *unstructured.Unstructured {
	o := &unstructured.Unstructured{Object: map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": map[string]any{"name": name}}}
	if ns != "" {
		o.SetNamespace(ns)
	}
	for k, v := range extra {
		o.Object[k] = v
	}
	return o
}

func crd(name string) *unstructured.Unstructured {
	return obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", name, map[string]any{"spec": map[string]any{"group": "example.com", "scope": "Namespaced"}})
}

func clusterRole(name string, verbs ...any) *unstructured.Unstructured {
	return obj("rbac.authorization.k8s.io/v1", "ClusterRole", "", name, map[string]any{"rules": []any{map[string]any{"apiGroups": []any{""}, "resources": []any{"pods"}, "verbs": verbs}}})
}

// TestDigestIsOrderFree: the digest names the set of objects, whatever the
// order the render gave them in, and changes with any field.
func TestDigestIsOrderFree(t *testing.T) {
	a := []*unstructured.Unstructured{crd("widgets.example.com"), clusterRole("reader", "get"), obj("v1", "ConfigMap", "kube-system", "cfg", nil)}
	b := []*unstructured.Unstructured{a[2], a[0], a[1]}
	da, err := NewBundle(a).Digest()
	if err != nil {
		t.Fatal(err)
	}
	db, _ := NewBundle(b).Digest()
	if da != db || !strings.HasPrefix(da, "sha256:") || len(da) != len("sha256:")+64 {
		t.Fatalf("digests %s and %s", da, db)
	}
	changed := []*unstructured.Unstructured{a[0], clusterRole("reader", "get", "list"), a[2]}
	if dc, _ := NewBundle(changed).Digest(); dc == da {
		t.Error("a changed rule keeps the digest")
	}
	empty, _ := NewBundle(nil).Digest()
	if empty == "" || empty == da {
		t.Errorf("the empty bundle's digest %q", empty)
	}
	if got := NewBundle(b).Refs(); strings.Join(got, ",") != "ConfigMap/cfg (namespace kube-system),CustomResourceDefinition/widgets.example.com,ClusterRole/reader" {
		t.Errorf("refs %q", got)
	}
}

func TestEncodeDecode(t *testing.T) {
	b := NewBundle([]*unstructured.Unstructured{clusterRole("reader", "get"), crd("widgets.example.com")})
	digest, _ := b.Digest()
	data, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(data, digest)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := got.Digest(); d != digest || len(got.Objects) != 2 {
		t.Fatalf("decoded %d objects, digest %s, want %s", len(got.Objects), d, digest)
	}

	t.Log("a stored bundle that does not hash to its digest is refused")
	other, _ := NewBundle([]*unstructured.Unstructured{clusterRole("reader", "*")}).Encode()
	if _, err := Decode(other, digest); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("tampered bundle: %v", err)
	}

	t.Log("limits: compressed size, decompressed size (a gzip bomb), object count, objects without names")
	if _, err := Decode(make([]byte, MaxEncodedBytes+1), ""); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized: %v", err)
	}
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	_, _ = zw.Write([]byte("["))
	_, _ = zw.Write(bytes.Repeat([]byte(" "), MaxDecodedBytes+10))
	_ = zw.Close()
	if _, err := Decode(bomb.Bytes(), ""); !errors.Is(err, ErrTooLarge) {
		t.Errorf("gzip bomb: %v", err)
	}
	many := make([]*unstructured.Unstructured, MaxObjects+1)
	for i := range many {
		many[i] = obj("v1", "ConfigMap", "kube-system", "c"+strings.Repeat("x", i%50)+string(rune('a'+i%26)), nil)
	}
	if _, err := NewBundle(many).Encode(); !errors.Is(err, ErrTooLarge) {
		t.Errorf("too many objects: %v", err)
	}
	var nameless bytes.Buffer
	zw = gzip.NewWriter(&nameless)
	_, _ = zw.Write([]byte(`[{"apiVersion":"v1","kind":"ConfigMap","metadata":{}}]`))
	_ = zw.Close()
	if _, err := Decode(nameless.Bytes(), ""); err == nil || !strings.Contains(err.Error(), "object 0 has no apiVersion, kind or name") {
		t.Errorf("nameless object: %v", err)
	}
}

// TestCompare: what a pending bundle changes against the approved one.
func TestCompare(t *testing.T) {
	approved := NewBundle([]*unstructured.Unstructured{crd("widgets.example.com"), clusterRole("reader", "get"), clusterRole("old", "get")})
	pending := NewBundle([]*unstructured.Unstructured{crd("widgets.example.com"), clusterRole("reader", "get", "list"), clusterRole("new", "watch")})
	c, err := Compare(approved, pending)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Added, ",") != "ClusterRole/new" || strings.Join(c.Changed, ",") != "ClusterRole/reader" || strings.Join(c.Removed, ",") != "ClusterRole/old" || c.Empty() {
		t.Fatalf("changes %+v", c)
	}
	if !strings.Contains(c.Diff, "+  - list") || !strings.Contains(c.Diff, "ClusterRole/reader (approved)") || strings.Contains(c.Diff, "CustomResourceDefinition") {
		t.Errorf("diff:\n%s", c.Diff)
	}
	first, _ := Compare(nil, pending)
	if len(first.Added) != 3 || len(first.Removed) != 0 {
		t.Errorf("first approval: %+v", first)
	}
	same, _ := Compare(approved, approved)
	if !same.Empty() || same.Diff != "" {
		t.Errorf("no change: %+v", same)
	}
	if got := bounded([]string{strings.Repeat("a", 10), strings.Repeat("b", 10), "c"}, 15); got != strings.Repeat("a", 10)+"… and 2 more object diff(s) left out; keyless approve shows them all\n" {
		t.Errorf("bounded: %q", got)
	}
}

func FuzzDecode(f *testing.F) {
	good, _ := NewBundle([]*unstructured.Unstructured{clusterRole("reader", "get")}).Encode()
	f.Add(good)
	f.Add([]byte{0x1f, 0x8b})
	f.Add([]byte("not gzip"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Decode(data, "")
		if err != nil {
			return
		}
		// What decodes re-encodes, and to the same digest.
		d1, err := b.Digest()
		if err != nil {
			return
		}
		enc, err := b.Encode()
		if err != nil {
			return
		}
		if _, err := Decode(enc, d1); err != nil {
			t.Fatalf("re-encoded bundle: %v", err)
		}
	})
}

package controller

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/engine"
)

// TestDriftDiffWithheldWithDecryption: the diff of an Application with
// spec.decryption never reaches status.sync.diff, whatever the kind; one
// without keeps its diff.
func TestDriftDiffWithheldWithDecryption(t *testing.T) {
	const plaintext = "cm-value-from-a-sops-file"
	res := &engine.Result{Changes: []engine.Change{{
		Ref:    engine.ObjectRef{Kind: "ConfigMap", Name: "settings"},
		Action: engine.ActionConfigured,
		Diff:   "--- ConfigMap/settings\n+++ ConfigMap/settings\n-  dsn: edited\n+  dsn: " + plaintext + "\n",
	}}}
	app := &kv1.Application{}
	if d := driftDiff(res, app); !strings.Contains(d, plaintext) {
		t.Fatalf("without spec.decryption the diff is shown, got %q", d)
	}
	app.Spec.Decryption = &kv1.Decryption{Provider: kv1.DecryptionProviderSOPS, SecretRef: kv1.LocalObjectReference{Name: "sops-age"}}
	if d := driftDiff(res, app); strings.Contains(d, plaintext) || !strings.Contains(d, "diff withheld") {
		t.Fatalf("with spec.decryption status.sync.diff is %q, want it withheld", d)
	}
}

func TestChangedObjectsIsBounded(t *testing.T) {
	changes := func(n int) *engine.Result {
		res := &engine.Result{Changes: []engine.Change{{Ref: engine.ObjectRef{Kind: "ConfigMap", Name: "same"}, Action: engine.ActionUnchanged}}}
		for i := range n {
			res.Changes = append(res.Changes, engine.Change{Ref: engine.ObjectRef{Kind: "ConfigMap", Name: fmt.Sprintf("c%d", i)}, Action: engine.ActionConfigured})
		}
		return res
	}
	for _, tc := range []struct {
		n        int
		wantLen  int
		wantLast string
	}{
		{0, 0, ""},
		{1, 1, "ConfigMap/c0 configured"},
		{kv1.MaxRecordedChanges, kv1.MaxRecordedChanges, fmt.Sprintf("ConfigMap/c%d configured", kv1.MaxRecordedChanges-1)},
		{kv1.MaxRecordedChanges + 1, kv1.MaxRecordedChanges, "… and 2 more"},
		{500, kv1.MaxRecordedChanges, fmt.Sprintf("… and %d more", 500-kv1.MaxRecordedChanges+1)},
	} {
		got := changedObjects(changes(tc.n))
		if len(got) != tc.wantLen {
			t.Fatalf("%d changes: %d entries %q, want %d", tc.n, len(got), got, tc.wantLen)
		}
		if tc.wantLen > 0 && got[len(got)-1] != tc.wantLast {
			t.Errorf("%d changes: last entry %q, want %q", tc.n, got[len(got)-1], tc.wantLast)
		}
		if slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, "same") }) {
			t.Errorf("%d changes: unchanged object listed: %q", tc.n, got)
		}
	}
	if changedObjects(nil) != nil {
		t.Error("nil result: want no list")
	}
}

// TestRenderedDigest: the same objects in any order give the same digest;
// another value another.
func TestRenderedDigest(t *testing.T) {
	cm := func(name, v string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": name, "namespace": "a"}, "data": map[string]any{"v": v}}}
	}
	a := renderedDigest([]*unstructured.Unstructured{cm("x", "1"), cm("y", "2")})
	if b := renderedDigest([]*unstructured.Unstructured{cm("y", "2"), cm("x", "1")}); a != b || !strings.HasPrefix(a, "sha256:") {
		t.Errorf("digests %s and %s of the same objects", a, b)
	}
	if c := renderedDigest([]*unstructured.Unstructured{cm("x", "1"), cm("y", "3")}); c == a {
		t.Error("another value, the same digest")
	}
}

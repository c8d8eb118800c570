package controller

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
)

// TestEnginePoolEvicts: Applications with one deployer share an engine; it
// is dropped with the last of them, and an Application moving to another
// deployer releases the old one.
func TestEnginePoolEvicts(t *testing.T) {
	p := newEnginePool(&rest.Config{Host: "https://127.0.0.1:1"}, meta.NewDefaultRESTMapper(nil))
	web := types.NamespacedName{Namespace: "team-a", Name: "web"}
	api := types.NamespacedName{Namespace: "team-a", Name: "api"}
	const deployer, other = "system:serviceaccount:team-a:keyless-deployer", "system:serviceaccount:team-a:other"

	e1, err := p.get(web, deployer)
	if err != nil {
		t.Fatal(err)
	}
	e2, err := p.get(api, deployer)
	if err != nil {
		t.Fatal(err)
	}
	if e1 != e2 || p.len() != 1 {
		t.Fatalf("two Applications of one deployer got %d engines (same: %v)", p.len(), e1 == e2)
	}
	p.forget(web)
	if p.len() != 1 {
		t.Fatal("the engine was dropped while another Application still uses it")
	}
	if _, err := p.get(api, other); err != nil {
		t.Fatal(err)
	}
	if p.len() != 1 {
		t.Fatalf("after api moved to another deployer the pool holds %d engines, want 1", p.len())
	}
	p.forget(api)
	if p.len() != 0 {
		t.Fatalf("after every Application went the pool holds %d engines", p.len())
	}
}

// TestRenderCacheKeyAndForget: a render is reused only for the key it was
// made from and dropped with its Application.
func TestRenderCacheKeyAndForget(t *testing.T) {
	c := newRenderCache()
	app := types.NamespacedName{Namespace: "team-a", Name: "web"}
	cm := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "settings"}, "data": map[string]any{"replicas": int64(3)}}}
	c.put(app, "repo", "https://example.com/r.git", "sha1", []*unstructured.Unstructured{cm}, nil, nil)
	got, ok := c.get(app, "repo", "sha1")
	if !ok || len(got) != 1 {
		t.Fatal("the render of the same key was not reused")
	}
	if !equality.Semantic.DeepEqual(got[0].Object, cm.Object) {
		t.Fatalf("the cached render came back as %v, want %v", got[0].Object, cm.Object)
	}
	got[0].SetName("changed") // a caller's change does not reach the cache
	if again, _ := c.get(app, "repo", "sha1"); again[0].GetName() != "settings" {
		t.Fatalf("a change to a returned object reached the cache: %q", again[0].GetName())
	}
	if _, ok := c.get(app, "repo", "sha2"); ok {
		t.Fatal("a render was reused for another commit")
	}
	if _, ok := c.get(app, "other options", "sha1"); ok {
		t.Fatal("a render was reused for other options")
	}
	c.advance(app, "repo", "sha1", "sha2")
	if _, ok := c.get(app, "repo", "sha2"); !ok {
		t.Fatal("a render advanced to a commit that left its inputs alone was not reused there")
	}
	c.forget(app)
	if _, ok := c.get(app, "repo", "sha1"); ok || c.len() != 0 {
		t.Fatal("the render outlived its Application")
	}
}

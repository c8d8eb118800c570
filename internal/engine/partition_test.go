package engine

import (
	"errors"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// TestPartition: with outOfNamespace: approve, the render splits into what
// the deployer applies and what a person approves — by the cluster's
// scopes, a CRD of the same render, or the built-in kinds.
func TestPartition(t *testing.T) {
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, meta.RESTScopeNamespace)
	mapper.Add(schema.GroupVersionKind{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRole"}, meta.RESTScopeRoot)
	mapper.Add(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}, meta.RESTScopeRoot)
	mk := func(apiVersion, kind, ns, name string) *unstructured.Unstructured {
		o := &unstructured.Unstructured{Object: map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": map[string]any{"name": name}}}
		if ns != "" {
			o.SetNamespace(ns)
		}
		return o
	}
	crd := mk("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "widgets.example.com")
	crd.Object["spec"] = map[string]any{"group": "example.com", "scope": "Namespaced", "names": map[string]any{"kind": "Widget"}}
	gcrd := mk("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "globals.example.com")
	gcrd.Object["spec"] = map[string]any{"group": "example.com", "scope": "Cluster", "names": map[string]any{"kind": "Global"}}
	objs := []*unstructured.Unstructured{
		mk("v1", "ConfigMap", "", "plain"),
		mk("v1", "ConfigMap", "shop", "here"),
		mk("v1", "ConfigMap", "kube-system", "elsewhere"),
		mk("rbac.authorization.k8s.io/v1", "ClusterRole", "", "reader"),
		crd, gcrd,
		mk("example.com/v1", "Widget", "", "w"),        // scope from the render's CRD
		mk("example.com/v1", "Global", "", "g"),        // cluster-scoped by the render's CRD
		mk("v1", "Namespace", "", "shop"),              // its own namespace: apply skips it
		mk("v1", "Namespace", "", "monitoring"),        // built in, cluster-scoped
		mk("unknown.example/v1", "Thing", "", "thing"), // nobody knows: apply refuses it
	}
	names := func(objs []*unstructured.Unstructured) []string {
		var out []string
		for _, o := range objs {
			out = append(out, o.GetKind()+"/"+o.GetName())
		}
		return out
	}
	inside, outside, err := Partition(objs, "shop", mapper)
	if err != nil {
		t.Fatal(err)
	}
	wantIn := []string{"ConfigMap/plain", "ConfigMap/here", "Widget/w", "Namespace/shop", "Thing/thing"}
	wantOut := []string{"ConfigMap/elsewhere", "ClusterRole/reader", "CustomResourceDefinition/widgets.example.com", "CustomResourceDefinition/globals.example.com", "Global/g", "Namespace/monitoring"}
	if got := names(inside); !slices.Equal(got, wantIn) {
		t.Errorf("inside %q, want %q", got, wantIn)
	}
	if got := names(outside); !slices.Equal(got, wantOut) {
		t.Errorf("outside %q, want %q", got, wantOut)
	}
	if objs[0].GetNamespace() != "" {
		t.Error("Partition changed an object")
	}
	if _, _, err := Partition(objs, "", mapper); !errors.Is(err, ErrNoNamespace) {
		t.Errorf("no namespace: %v", err)
	}
}

package ui

import (
	"context"
	"errors"
	"fmt"
	"sort"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/celhealth"
	"github.com/keyless-cd/keyless/internal/engine"
)

// objectNode is one object of an Application's tree: what it is, its
// status as the controller judges it (the Application's CEL health, then
// kstatus), and the objects it owns that the viewer may read.
type objectNode struct {
	Kind, Name string
	Status     string
	Message    string
	// Note says why the object could not be read (forbidden, missing).
	Note string
	// Annotations are the object's annotations a person reads (bounded,
	// values cut; kubectl's last-applied copy left out).
	Annotations []annotationView
	Children    []*objectNode
}

// annotationView is one annotation as shown.
type annotationView struct{ Key, Value string }

// Bounds of the annotations shown per object.
const (
	maxAnnotations     = 20
	maxAnnotationValue = 200
)

// hiddenAnnotations repeat the object itself and would only crowd the page.
var hiddenAnnotations = map[string]bool{
	"kubectl.kubernetes.io/last-applied-configuration": true,
}

// childKinds are the kinds listed to find what the deployed objects own
// (Deployment → ReplicaSet → Pod, CronJob → Job → Pod, StatefulSet → Pod).
var childKinds = []schema.GroupVersionResource{
	{Group: "apps", Version: "v1", Resource: "replicasets"},
	{Group: "batch", Version: "v1", Resource: "jobs"},
	{Version: "v1", Resource: "pods"},
}

// Bounds of one tree: inventory entries read, children listed per kind,
// depth below a deployed object.
const (
	maxTreeObjects  = 200
	maxChildrenList = 500
	maxTreeDepth    = 3
)

// objectTree reads the Application's inventory as the viewer and hangs
// each readable child under its controller owner. notes say which kinds
// could not be listed.
func (s *Server) objectTree(ctx context.Context, app *kv1.Application) (nodes []*objectNode, notes []string) {
	health, err := s.healthOf(app)
	if err != nil {
		notes = append(notes, err.Error()+"; the objects are judged without it (the controller refuses the Application, InvalidSpec)")
	}
	children := map[types.UID][]*unstructured.Unstructured{}
	for _, gvr := range childKinds {
		list, err := s.dynamic.Resource(gvr).Namespace(app.Namespace).List(ctx, metav1.ListOptions{Limit: maxChildrenList})
		if err != nil {
			if apierrors.IsForbidden(err) {
				notes = append(notes, fmt.Sprintf("%s are not shown: you may not list them in %s", gvr.Resource, app.Namespace))
			} else {
				notes = append(notes, fmt.Sprintf("%s are not shown: listing them failed: %s", gvr.Resource, errorText(err)))
			}
			continue
		}
		for i := range list.Items {
			o := &list.Items[i]
			if ref := metav1.GetControllerOf(o); ref != nil {
				children[ref.UID] = append(children[ref.UID], o)
			}
		}
	}
	for i, e := range app.Status.Inventory {
		if i == maxTreeObjects {
			notes = append(notes, fmt.Sprintf("%d more objects are not shown", len(app.Status.Inventory)-maxTreeObjects))
			break
		}
		nodes = append(nodes, s.inventoryNode(ctx, app.Namespace, e, children, health))
	}
	return nodes, notes
}

func (s *Server) inventoryNode(ctx context.Context, ns string, e kv1.InventoryEntry, children map[types.UID][]*unstructured.Unstructured, health engine.Health) *objectNode {
	n := &objectNode{Kind: e.Kind, Name: e.Name}
	gvk := schema.GroupVersionKind{Group: e.Group, Version: e.Version, Kind: e.Kind}
	mapping, err := s.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		n.Note = "unknown kind: " + err.Error()
		return n
	}
	ri := s.dynamic.Resource(mapping.Resource)
	var obj *unstructured.Unstructured
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		obj, err = ri.Namespace(ns).Get(ctx, e.Name, metav1.GetOptions{})
	} else {
		obj, err = ri.Get(ctx, e.Name, metav1.GetOptions{})
	}
	switch {
	case apierrors.IsForbidden(err):
		n.Note = "you may not read it"
		return n
	case apierrors.IsNotFound(err):
		n.Status, n.Note = kv1.HealthMissing, "not found in the cluster"
		return n
	case err != nil:
		n.Note = errorText(err)
		return n
	}
	describe(n, obj, health)
	n.Children = childNodes(obj.GetUID(), children, 1, health)
	return n
}

func childNodes(owner types.UID, children map[types.UID][]*unstructured.Unstructured, depth int, health engine.Health) []*objectNode {
	if depth > maxTreeDepth {
		return nil
	}
	kids := children[owner]
	sort.Slice(kids, func(i, j int) bool {
		if kids[i].GetKind() != kids[j].GetKind() {
			return kids[i].GetKind() < kids[j].GetKind()
		}
		return kids[i].GetName() < kids[j].GetName()
	})
	var out []*objectNode
	for _, k := range kids {
		n := &objectNode{Kind: k.GetKind(), Name: k.GetName()}
		describe(n, k, health)
		n.Children = childNodes(k.GetUID(), children, depth+1, health)
		out = append(out, n)
	}
	return out
}

// describe sets n's status, message and annotations from the live object:
// its status as the controller judges it (engine.ObjectHealth: health's CEL
// expressions, then kstatus), so a custom resource shows the verdict of its
// expression and, when Failed, the condition that says it failed.
func describe(n *objectNode, obj *unstructured.Unstructured, health engine.Health) {
	n.Annotations = annotationsOf(obj.GetAnnotations())
	st, msg := engine.ObjectHealth(obj, health)
	n.Status, n.Message = string(st), msg
}

// healthOf is the CEL health the controller judges app's objects with: its
// spec.healthCheckExprs over the defaults (Options.Health), compiled once
// per generation of the Application. An entry that does not compile is
// returned as the error, with the defaults alone.
func (s *Server) healthOf(app *kv1.Application) (engine.Health, error) {
	if len(app.Spec.HealthCheckExprs) == 0 {
		return s.opts.Health, nil
	}
	key := types.NamespacedName{Namespace: app.Namespace, Name: app.Name}
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	if c, ok := s.health[key]; ok && c.uid == app.UID && c.generation == app.Generation {
		return c.checker, c.err
	}
	c := appHealth{uid: app.UID, generation: app.Generation, checker: s.opts.Health}
	if checker, err := celhealth.CompileSpec(app.Spec.HealthCheckExprs); err != nil {
		c.err = err
	} else {
		c.checker = checker.Merge(s.opts.Health)
	}
	if len(s.health) >= maxHealthCache {
		clear(s.health)
	}
	s.health[key] = c
	return c.checker, c.err
}

// appHealth is one Application's compiled health, for its generation.
type appHealth struct {
	uid        types.UID
	generation int64
	checker    *celhealth.Checker
	err        error
}

// maxHealthCache bounds the compiled health kept (Applications seen).
const maxHealthCache = 1000

// errorText is what a page says of a failed read: the API's own message
// for a status error (it names the object and the verb), else the error.
func errorText(err error) string {
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		return se.Status().Message
	}
	return err.Error()
}

// annotationsOf returns the annotations to show, sorted by key and bounded.
func annotationsOf(all map[string]string) []annotationView {
	keys := make([]string, 0, len(all))
	for k := range all {
		if !hiddenAnnotations[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var out []annotationView
	for i, k := range keys {
		if i == maxAnnotations {
			out = append(out, annotationView{Key: "…", Value: fmt.Sprintf("%d more", len(keys)-maxAnnotations)})
			break
		}
		v := all[k]
		if r := []rune(v); len(r) > maxAnnotationValue {
			v = string(r[:maxAnnotationValue]) + "…"
		}
		out = append(out, annotationView{Key: k, Value: v})
	}
	return out
}

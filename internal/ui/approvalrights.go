package ui

import (
	"context"
	"fmt"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/approval"
)

// mayApprove decides, once per page view, whether the Approve button is
// shown for app's pending approval: the viewer may patch the Application
// (canPatch, the Sync button's review), four eyes do not exclude them, they
// may read the pending objects in the controller's namespace, and the API
// server would let them do every write of the approval — one
// SelfSubjectAccessReview each: patch per pending object (group/resource
// from discovery, or from a CRD of the same bundle for a kind not served
// yet; namespace "" for cluster-scoped), delete per object the approval
// removes, create and update on the approval record's ConfigMap. A review
// of all names of a resource comes first: allowed, the per-name reviews
// under it are not asked. When not, the note says why.
func (s *Server) mayApprove(ctx context.Context, app *kv1.Application, canPatch bool) (bool, string) {
	cli := fmt.Sprintf("keyless approve %s -n %s", app.Name, app.Namespace)
	if !canPatch {
		return false, "Approving needs a person whom the API server lets write these objects and patch this Application (" + cli + ")."
	}
	pending := app.Status.Approval.Pending
	if viewer := s.viewer(ctx); approval.IsAuthor(viewer, pending.Author) && !app.AllowsSelfApproval() {
		return false, fmt.Sprintf("You (%s) wrote revision %s: four eyes, another person must approve it "+
			"(or the Application's admin sets spec.syncPolicy.approval.allowSelfApproval).", viewer, kv1.ShortSHA(pending.Revision))
	}
	objs, removed, note := s.approvalObjects(ctx, app)
	if note != "" {
		return false, note
	}
	c := &accessCheck{}
	crds := crdsOf(objs, removed)
	for _, o := range objs {
		if note := s.addObject(c, "patch", o, crds); note != "" {
			return false, note
		}
	}
	for _, o := range removed {
		if note := s.addObject(c, "delete", o, crds); note != "" {
			return false, note
		}
	}
	ns := s.opts.ControllerNamespace
	configMaps := schema.GroupResource{Resource: "configmaps"}
	c.add("create", configMaps, ns, "", "ConfigMaps in "+ns+" (the approval record)")
	c.add("update", configMaps, ns, approval.RecordName(app.Namespace, app.Name), "ConfigMap "+ns+"/"+approval.RecordName(app.Namespace, app.Name)+" (the approval record)")
	denied, err := c.run(ctx, s.may)
	switch {
	case err != nil:
		return false, "Asking the API server whether you may approve failed: " + errorText(err)
	case denied != "":
		return false, "The API server would not let you approve this revision: you may not " + denied + " (" + cli + " as a cluster admin)."
	}
	return true, ""
}

// approvalObjects reads, as the viewer, the pending objects and the last
// approval's, and returns the pending objects and those the approval
// would delete; or a note saying why they cannot be read.
func (s *Server) approvalObjects(ctx context.Context, app *kv1.Application) (objs, removed []*unstructured.Unstructured, note string) {
	ns, want := s.opts.ControllerNamespace, app.Status.Approval.Pending.Digest
	name := approval.PendingName(app.Namespace, app.Name)
	cm, err := s.kube.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsForbidden(err):
		return nil, nil, fmt.Sprintf("You may not read the pending objects (ConfigMap %s/%s): approving needs a cluster admin.", ns, name)
	case apierrors.IsNotFound(err):
		return nil, nil, fmt.Sprintf("The pending objects are not in %s (ConfigMap %s): is the controller there? Start keyless ui with --controller-namespace.", ns, name)
	case err != nil:
		return nil, nil, fmt.Sprintf("Reading the pending objects %s/%s failed: %s", ns, name, errorText(err))
	}
	pending, err := approval.PendingFromConfigMap(cm, app.Namespace, app.Name)
	if err != nil {
		return nil, nil, "The pending objects cannot be read: " + err.Error()
	}
	if pending.Digest != want {
		return nil, nil, fmt.Sprintf("The stored objects (%s) are not the ones this page shows (%s): the controller is moving on; reload in a moment.", pending.Digest, want)
	}
	recName := approval.RecordName(app.Namespace, app.Name)
	recCM, err := s.kube.CoreV1().ConfigMaps(ns).Get(ctx, recName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return pending.Bundle.Objects, nil, ""
	case err != nil:
		return nil, nil, fmt.Sprintf("Reading the last approval %s/%s failed: %s", ns, recName, errorText(err))
	}
	rec, err := approval.RecordFromConfigMap(recCM, app.Namespace, app.Name)
	if err != nil {
		return nil, nil, "The last approval cannot be read: " + err.Error()
	}
	keep := map[string]bool{}
	for _, o := range pending.Bundle.Objects {
		keep[approval.Key(o)] = true
	}
	for _, o := range rec.Bundle.Objects {
		if !keep[approval.Key(o)] {
			removed = append(removed, o)
		}
	}
	return pending.Bundle.Objects, removed, ""
}

// crdResource is what a CustomResourceDefinition of a bundle says of its
// kind: the resource and whether it is namespaced.
type crdResource struct {
	resource   schema.GroupResource
	namespaced bool
}

// crdsOf are the kinds the CRDs among the bundles define.
func crdsOf(bundles ...[]*unstructured.Unstructured) map[schema.GroupKind]crdResource {
	out := map[schema.GroupKind]crdResource{}
	for _, objs := range bundles {
		for _, o := range objs {
			if o.GroupVersionKind().GroupKind() != (schema.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}) {
				continue
			}
			group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
			kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
			plural, _, _ := unstructured.NestedString(o.Object, "spec", "names", "plural")
			scope, _, _ := unstructured.NestedString(o.Object, "spec", "scope")
			out[schema.GroupKind{Group: group, Kind: kind}] = crdResource{resource: schema.GroupResource{Group: group, Resource: plural}, namespaced: scope == "Namespaced"}
		}
	}
	return out
}

// addObject adds the review of verb on o: its resource from discovery, or
// from a CRD of the bundle for a kind the API server does not serve yet.
func (s *Server) addObject(c *accessCheck, verb string, o *unstructured.Unstructured, crds map[schema.GroupKind]crdResource) string {
	gvk := o.GroupVersionKind()
	ref := approval.Ref(o)
	var res crdResource
	m, err := s.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	switch {
	case err == nil:
		res = crdResource{resource: m.Resource.GroupResource(), namespaced: m.Scope.Name() == meta.RESTScopeNameNamespace}
	case meta.IsNoMatchError(err):
		crd, ok := crds[gvk.GroupKind()]
		if !ok {
			return fmt.Sprintf("The API server does not serve %s, nor do the pending objects define it (%s): approving would fail.", gvk.Kind, ref)
		}
		res = crd
	default:
		return fmt.Sprintf("Finding the resource of %s failed: %s", ref, errorText(err))
	}
	ns := ""
	if res.namespaced {
		ns = o.GetNamespace()
	}
	c.add(verb, res.resource, ns, o.GetName(), ref)
	return ""
}

// accessCheck gathers the reviews one approval needs, by verb, resource and
// namespace.
type accessCheck struct {
	wants []*accessWant
}

// accessWant is one verb on one resource in one namespace, for names
// ("" for a verb such as create that names none).
type accessWant struct {
	attrs authorizationv1.ResourceAttributes
	names []string
	refs  []string
}

func (c *accessCheck) add(verb string, gr schema.GroupResource, namespace, name, ref string) {
	attrs := authorizationv1.ResourceAttributes{Verb: verb, Group: gr.Group, Resource: gr.Resource, Namespace: namespace}
	for _, w := range c.wants {
		if w.attrs == attrs {
			w.names, w.refs = append(w.names, name), append(w.refs, ref)
			return
		}
	}
	c.wants = append(c.wants, &accessWant{attrs: attrs, names: []string{name}, refs: []string{ref}})
}

// run asks may for each want, all names first, then name by name, and
// returns the first write refused ("" when all are allowed).
func (c *accessCheck) run(ctx context.Context, may func(context.Context, authorizationv1.ResourceAttributes) (bool, error)) (string, error) {
	for _, w := range c.wants {
		ok, err := may(ctx, w.attrs)
		if err != nil {
			return "", err
		}
		if ok {
			continue
		}
		for i, name := range w.names {
			if name != "" {
				attrs := w.attrs
				attrs.Name = name
				if ok, err = may(ctx, attrs); err != nil {
					return "", err
				}
			}
			if !ok {
				return w.attrs.Verb + " " + w.refs[i], nil
			}
		}
	}
	return "", nil
}

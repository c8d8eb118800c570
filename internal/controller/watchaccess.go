package controller

import (
	"context"
	"fmt"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// watchAccess asks the apiserver (SelfSubjectAccessReview) whether the
// controller may list and watch a kind in every managed namespace. A kind it
// may not watch is not given an informer: the informer would retry its
// forbidden list for ever, filling the controller's log and the apiserver's
// audit log with denied requests an auditor would have to explain.
type watchAccess struct {
	client     client.Client
	mapper     meta.RESTMapper
	namespaces []string
}

// check returns "" when gvk may be watched, else what is missing.
func (w *watchAccess) check(ctx context.Context, gvk schema.GroupVersionKind) (string, error) {
	mapping, err := w.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return "", fmt.Errorf("mapping %s: %w", gvk, err)
	}
	res := mapping.Resource
	for _, ns := range w.namespaces {
		for _, verb := range []string{"list", "watch"} {
			review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
				ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: verb, Group: res.Group, Version: res.Version, Resource: res.Resource},
			}}
			if err := w.client.Create(ctx, review); err != nil {
				return "", fmt.Errorf("asking whether the controller may %s %s in %s: %w", verb, res.Resource, ns, err)
			}
			if !review.Status.Allowed {
				return fmt.Sprintf("%s %s in namespace %s", verb, res.GroupResource(), ns), nil
			}
		}
	}
	return "", nil
}

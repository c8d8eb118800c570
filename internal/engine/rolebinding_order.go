package engine

import (
	"context"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// roleKind is the kind a RoleBinding of the same set may wait for.
var roleKind = schema.GroupKind{Group: rbacv1.GroupName, Kind: "Role"}

// stagedKinds are applied before the rest of a simple set (after CRDs and
// Namespaces): a RoleBinding's dry-run needs its Role to exist (the API
// server checks the binder holds the Role's rights), so a Role and a
// RoleBinding to it committed together apply in one sync.
var stagedKinds = map[schema.GroupKind]struct{}{roleKind: {}}

// rolesOf names the Roles among objs.
func rolesOf(objs []*unstructured.Unstructured) map[string]bool {
	out := map[string]bool{}
	for _, o := range objs {
		if o.GroupVersionKind().GroupKind() == roleKind {
			out[o.GetName()] = true
		}
	}
	return out
}

// awaitsRoleInSet reports whether the dry-run of o failed only because o
// is a RoleBinding to a Role that the same set creates and that does not
// exist yet: the API server refuses (Forbidden) a binding whose Role it
// cannot read. Applied in order (Roles first) it succeeds, and its real
// apply is checked by the API server then.
func (e *Engine) awaitsRoleInSet(ctx context.Context, o *unstructured.Unstructured, err error, roles map[string]bool) bool {
	if err == nil || !apierrors.IsForbidden(err) || o.GroupVersionKind().GroupKind() != (schema.GroupKind{Group: rbacv1.GroupName, Kind: "RoleBinding"}) {
		return false
	}
	kind, _, _ := unstructured.NestedString(o.Object, "roleRef", "kind")
	name, _, _ := unstructured.NestedString(o.Object, "roleRef", "name")
	if kind != roleKind.Kind || !roles[name] {
		return false
	}
	role := &unstructured.Unstructured{}
	role.SetGroupVersionKind(rbacv1.SchemeGroupVersion.WithKind("Role"))
	getErr := e.client.Get(ctx, client.ObjectKey{Namespace: o.GetNamespace(), Name: name}, role)
	return apierrors.IsNotFound(getErr)
}

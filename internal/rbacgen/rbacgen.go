// Package rbacgen derives namespaced RBAC from rendered manifests: which
// kinds (API group and resource) and objects they hold. keyless oidc rbac
// (a pipeline's Role, by object name) and keyless install namespace (the
// deployer's Role, by kind) both build on it.
package rbacgen

import (
	"errors"
	"fmt"
	"sort"

	apimeta "k8s.io/apimachinery/pkg/api/meta"

	"github.com/keyless-cd/keyless/internal/engine"
	"github.com/keyless-cd/keyless/internal/render"
)

// ErrClusterScoped is returned (wrapped) when manifests hold a
// cluster-scoped object.
var ErrClusterScoped = errors.New("cluster-scoped object")

// RBACVerbs are granted on RBAC kinds (the Roles and RoleBindings of the
// manifests), only by resourceNames: a derived Role never lets its holder
// make another binding, and never carries bind or escalate. create can be
// limited by name here: server-side apply creates a missing object with a
// PATCH naming it, and the API server authorizes that create with the name.
var RBACVerbs = []string{"get", "create", "patch", "update", "delete"}

// IsRBAC reports whether group is RBAC's API group: its kinds hand out
// rights, so derived Roles grant them only by name.
func IsRBAC(group string) bool { return group == rbacGroup }

const rbacGroup = "rbac.authorization.k8s.io"

// Kinds are manifests' objects by API group, resource and name.
type Kinds map[string]map[string]map[string]bool

// Add records one object.
func (k Kinds) Add(group, resource, name string) {
	if k[group] == nil {
		k[group] = map[string]map[string]bool{}
	}
	if k[group][resource] == nil {
		k[group][resource] = map[string]bool{}
	}
	k[group][resource][name] = true
}

// Groups returns the API groups, sorted.
func (k Kinds) Groups() []string { return sortedKeys(k) }

// Resources returns group's resources, sorted.
func (k Kinds) Resources(group string) []string { return sortedKeys(k[group]) }

// Names returns the object names of group/resource, sorted.
func (k Kinds) Names(group, resource string) []string { return sortedKeys(k[group][resource]) }

// Collect lists res's objects by kind, refusing cluster-scoped kinds and
// objects without a name, naming the file; what names the Role being
// generated, for the message.
func Collect(res *render.Result, what string) (Kinds, error) {
	kinds := Kinds{}
	for _, o := range res.Objects {
		gvk := o.GroupVersionKind()
		// A generated Role never grants cluster-scoped kinds (a Namespace
		// manifest would let whoever writes the manifests relabel their own
		// namespace's Pod Security level).
		if engine.IsBuiltinClusterScoped(gvk.GroupKind()) {
			return nil, fmt.Errorf("%s/%s (%s): %s never grants cluster-scoped kinds; ask a cluster admin to manage it: %w",
				gvk.Kind, o.GetName(), res.Source(o), what, ErrClusterScoped)
		}
		if o.GetName() == "" {
			return nil, fmt.Errorf("%s (%s) has no metadata.name; a Role limited by resourceNames needs one", gvk.Kind, res.Source(o))
		}
		plural, _ := apimeta.UnsafeGuessKindToResource(gvk)
		kinds.Add(gvk.Group, plural.Resource, o.GetName())
	}
	return kinds, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

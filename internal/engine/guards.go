package engine

import (
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// ErrRefused is returned (wrapped) when objects break the namespace guard.
var ErrRefused = errors.New("objects refused")

// Guard names one of the guards that refuse objects before anything is
// written.
type Guard string

// The guards, in the order apply runs them.
const (
	// GuardNamespace refuses cluster-scoped objects and objects naming
	// another namespace (Confine).
	GuardNamespace Guard = "namespace"
	// GuardIdentity refuses pods running as keyless's own identity and
	// ServiceAccount token Secrets.
	GuardIdentity Guard = "identity"
	// GuardRBAC refuses Roles and RoleBindings that hand out rights outside
	// Git. keyless apply and keyless install skip it (TrustRBAC): the API
	// server's checks on the person's own identity decide.
	GuardRBAC Guard = "rbac"
)

// Refusal is one object a guard refuses, and why.
type Refusal struct {
	// Object is the refused object, as rendered (its namespace as written
	// in the manifest, "" when it names none).
	Object ObjectRef `json:"object"`
	Guard  Guard     `json:"guard"`
	// Reason says why and what to do; it does not name the object.
	Reason string `json:"reason"`
	// Source is where the object comes from (file:line, chart template),
	// "" when not known.
	Source string `json:"source,omitempty"`
}

// String is "Kind/name: reason", the line apply's error prints.
func (r Refusal) String() string { return r.Object.String() + ": " + r.Reason }

// Line is "Kind/name (namespace ns) — reason — source", a line of the
// offline reports (keyless render, keyless preview); the namespace and the
// source are left out when empty.
func (r Refusal) Line() string {
	s := r.Object.String()
	if r.Object.Namespace != "" {
		s += " (namespace " + r.Object.Namespace + ")"
	}
	s += " — " + r.Reason
	if r.Source != "" {
		s += " — " + r.Source
	}
	return s
}

// refusedError is nil without refusals, else ErrRefused listing them all
// after "N <what>, nothing was applied".
func refusedError(refused []Refusal, what string) error {
	if len(refused) == 0 {
		return nil
	}
	lines := make([]string, len(refused))
	for i, r := range refused {
		lines[i] = r.String()
	}
	return fmt.Errorf("%w: %d %s, nothing was applied:\n  %s", ErrRefused, len(refused), what, strings.Join(lines, "\n  "))
}

// scope is what the namespace guard knows of a kind.
type scope int

const (
	// scopeUnknown: neither the cluster nor the render says (offline, a
	// kind that is neither built in nor defined by a CRD of the render).
	scopeUnknown scope = iota
	scopeNamespaced
	scopeCluster
)

// namespaceReason is why the namespace guard refuses o, of scope s, in
// namespace, or "". An object of unknown scope is refused only when it
// names another namespace: it is refused then whatever its scope.
func namespaceReason(o *unstructured.Unstructured, namespace string, s scope) string {
	if s == scopeCluster {
		return fmt.Sprintf("cluster-scoped objects are not allowed; an application deploys into namespace %q only (ask a cluster admin to manage it)", namespace)
	}
	if ns := o.GetNamespace(); ns != "" && ns != namespace {
		return fmt.Sprintf("names namespace %q; an application deploys into namespace %q only", ns, namespace)
	}
	return ""
}

// Confine enforces keyless's namespace guard on objs before anything is
// written: namespaced objects without a namespace get namespace; objects that
// name another namespace, cluster-scoped objects and kinds the cluster does
// not know are refused, all of them listed in one error.
func Confine(objs []*unstructured.Unstructured, namespace string, mapper meta.RESTMapper) error {
	if namespace == "" {
		return ErrNoNamespace
	}
	var refused []Refusal
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			if meta.IsNoMatchError(err) {
				refused = append(refused, Refusal{Object: RefOf(o), Guard: GuardNamespace, Reason: fmt.Sprintf("the cluster does not serve %s (is its CRD installed?)", gvk.GroupVersion().WithKind(gvk.Kind))})
				continue
			}
			return fmt.Errorf("looking up %s/%s: %w", o.GetKind(), o.GetName(), err)
		}
		s := scopeCluster
		if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
			s = scopeNamespaced
		}
		if r := namespaceReason(o, namespace, s); r != "" {
			refused = append(refused, Refusal{Object: RefOf(o), Guard: GuardNamespace, Reason: r})
			continue
		}
		if o.GetNamespace() == "" {
			o.SetNamespace(namespace)
		}
	}
	return refusedError(refused, fmt.Sprintf("object(s) outside namespace %q", namespace))
}

// isOwnNamespace reports a manifest of the target namespace itself: apply
// skips it with a warning (keyless never writes Namespaces), no guard
// refuses it.
func isOwnNamespace(o *unstructured.Unstructured, namespace string) bool {
	return isNamespace(o) && o.GetName() == namespace
}

// setManagedLabels labels every object as keyless-managed and part of inventory name.
func setManagedLabels(objs []*unstructured.Unstructured, name string) {
	for _, o := range objs {
		labels := o.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[ManagedByLabel] = ManagedByValue
		labels[InventoryLabel] = name
		o.SetLabels(labels)
	}
}

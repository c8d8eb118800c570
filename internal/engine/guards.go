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

// Confine enforces keyless's namespace guard on objs before anything is
// written: namespaced objects without a namespace get namespace; objects that
// name another namespace, cluster-scoped objects and kinds the cluster does
// not know are refused, all of them listed in one error.
func Confine(objs []*unstructured.Unstructured, namespace string, mapper meta.RESTMapper) error {
	if namespace == "" {
		return ErrNoNamespace
	}
	var refused []string
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			if meta.IsNoMatchError(err) {
				refused = append(refused, fmt.Sprintf("%s/%s: the cluster does not serve %s (is its CRD installed?)", o.GetKind(), o.GetName(), gvk.GroupVersion().WithKind(gvk.Kind)))
				continue
			}
			return fmt.Errorf("looking up %s/%s: %w", o.GetKind(), o.GetName(), err)
		}
		if mapping.Scope.Name() != meta.RESTScopeNameNamespace {
			refused = append(refused, fmt.Sprintf("%s/%s: cluster-scoped objects are not allowed; an application deploys into namespace %q only (ask a cluster admin to manage it)", o.GetKind(), o.GetName(), namespace))
			continue
		}
		switch ns := o.GetNamespace(); ns {
		case "":
			o.SetNamespace(namespace)
		case namespace:
		default:
			refused = append(refused, fmt.Sprintf("%s/%s: names namespace %q; an application deploys into namespace %q only", o.GetKind(), o.GetName(), ns, namespace))
		}
	}
	if len(refused) > 0 {
		return fmt.Errorf("%w: %d object(s) outside namespace %q, nothing was applied:\n  %s", ErrRefused, len(refused), namespace, strings.Join(refused, "\n  "))
	}
	return nil
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

package engine

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Partition splits objs for an Application that has out-of-namespace
// objects approved by a person (spec.syncPolicy.outOfNamespace: approve)
// instead of refused: inside are the objects of namespace (or naming no
// namespace, of a namespaced kind), which the deployer applies as ever;
// outside are the cluster-scoped objects and those naming another
// namespace, which only an approval applies. A kind's scope comes from the
// cluster (mapper), else from a CustomResourceDefinition among objs (a
// custom resource of a CRD the same render installs), else from the kinds
// built into Kubernetes; a kind none of them knows stays inside, where
// apply refuses it as not served. The manifest of namespace itself stays
// inside (apply skips it with a warning). objs are not changed.
func Partition(objs []*unstructured.Unstructured, namespace string, mapper meta.RESTMapper) (inside, outside []*unstructured.Unstructured, err error) {
	if namespace == "" {
		return nil, nil, ErrNoNamespace
	}
	scopes := crdScopes(objs)
	for _, o := range objs {
		if isOwnNamespace(o, namespace) {
			inside = append(inside, o)
			continue
		}
		s, err := scopeOf(o, mapper, scopes)
		if err != nil {
			return nil, nil, err
		}
		if namespaceReason(o, namespace, s) != "" {
			outside = append(outside, o)
			continue
		}
		inside = append(inside, o)
	}
	return inside, outside, nil
}

// scopeOf is o's kind's scope: the cluster's answer, else the render's
// CRDs', else the built-in kinds'; scopeUnknown when none knows it.
func scopeOf(o *unstructured.Unstructured, mapper meta.RESTMapper, crds map[schema.GroupKind]scope) (scope, error) {
	gvk := o.GroupVersionKind()
	if mapper != nil {
		mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		switch {
		case err == nil && mapping.Scope.Name() == meta.RESTScopeNameNamespace:
			return scopeNamespaced, nil
		case err == nil:
			return scopeCluster, nil
		case !meta.IsNoMatchError(err):
			return scopeUnknown, fmt.Errorf("looking up %s/%s: %w", o.GetKind(), o.GetName(), err)
		}
	}
	if s, ok := crds[gvk.GroupKind()]; ok {
		return s, nil
	}
	if builtinClusterScoped[gvk.GroupKind()] {
		return scopeCluster, nil
	}
	return scopeUnknown, nil
}

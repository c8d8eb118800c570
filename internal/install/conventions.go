package install

import (
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"
)

// The recommended labels every installed object carries
// (https://kubernetes.io/docs/concepts/overview/working-with-objects/common-labels/).
const (
	NameLabel     = "app.kubernetes.io/name"
	PartOfLabel   = "app.kubernetes.io/part-of"
	InstanceLabel = "app.kubernetes.io/instance"
	VersionLabel  = "app.kubernetes.io/version"
	// PartOf is PartOfLabel's value, and NameLabel's where the manifests
	// set none.
	PartOf = "keyless"
	// DefaultInstance is InstanceLabel's value by default (a Helm chart's
	// is the release name).
	DefaultInstance = "keyless"
)

// kindDeployment is the controller's workload kind.
const kindDeployment = "Deployment"

// NoPruneAnnotations keep a pruning GitOps tool (or helm uninstall) from
// deleting an object when it leaves the export: the managed teams'
// Namespaces (deleting one deletes everything in it) and the Application
// CRD (deleting it deletes every Application). Flux: prune disabled; Argo
// CD: Prune=false; Helm: resource-policy keep.
var NoPruneAnnotations = map[string]string{
	"kustomize.toolkit.fluxcd.io/prune": "disabled",
	"argocd.argoproj.io/sync-options":   "Prune=false",
	"helm.sh/resource-policy":           "keep",
}

// labelValue makes v a valid label value: characters a label value may not
// hold become '_', at most 63 long, starting and ending alphanumeric.
func labelValue(v string) string {
	b := []byte(v)
	for i, c := range b {
		valid := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !valid {
			b[i] = '_'
		}
	}
	v = string(b)
	if len(v) > validation.LabelValueMaxLength {
		v = v[:validation.LabelValueMaxLength]
	}
	return strings.Trim(v, "-_.")
}

// setCommonLabels sets the recommended labels on o and, for a workload, on
// its pod template (never on its selector: that is immutable).
func setCommonLabels(o *unstructured.Unstructured, instance, version string) {
	add := func(labels map[string]string) map[string]string {
		if labels == nil {
			labels = map[string]string{}
		}
		if labels[NameLabel] == "" {
			labels[NameLabel] = PartOf
		}
		labels[PartOfLabel] = PartOf
		labels[InstanceLabel] = instance
		if version != "" {
			labels[VersionLabel] = version
		}
		return labels
	}
	o.SetLabels(add(o.GetLabels()))
	if tmpl, ok, _ := unstructured.NestedStringMap(o.Object, "spec", "template", "metadata", "labels"); ok {
		_ = unstructured.SetNestedStringMap(o.Object, add(tmpl), "spec", "template", "metadata", "labels")
	}
}

// setAnnotations adds annotations to o's.
func setAnnotations(o *unstructured.Unstructured, annotations map[string]string) {
	a := o.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	for k, v := range annotations {
		a[k] = v
	}
	o.SetAnnotations(a)
}

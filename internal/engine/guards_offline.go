package engine

import (
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// builtinClusterScoped are the kinds Kubernetes itself serves outside any
// namespace (TestBuiltinClusterScopedKinds compares them with a real API
// server's discovery). Without a cluster they are what the namespace guard
// knows of scopes, with the CRDs of the render.
var builtinClusterScoped = map[schema.GroupKind]bool{}

func init() {
	for group, kinds := range map[string][]string{
		"":                             {"Namespace", "Node", "PersistentVolume", "ComponentStatus"},
		"rbac.authorization.k8s.io":    {"ClusterRole", "ClusterRoleBinding"},
		"apiextensions.k8s.io":         {"CustomResourceDefinition"},
		"apiregistration.k8s.io":       {"APIService"},
		"storage.k8s.io":               {"StorageClass", "CSIDriver", "CSINode", "VolumeAttachment", "VolumeAttributesClass"},
		"scheduling.k8s.io":            {"PriorityClass"},
		"networking.k8s.io":            {"IngressClass", "IPAddress", "ServiceCIDR"},
		"node.k8s.io":                  {"RuntimeClass"},
		"certificates.k8s.io":          {"CertificateSigningRequest", "ClusterTrustBundle"},
		"flowcontrol.apiserver.k8s.io": {"FlowSchema", "PriorityLevelConfiguration"},
		"admissionregistration.k8s.io": {"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
			"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding"},
		"authentication.k8s.io":     {"TokenReview", "SelfSubjectReview"},
		"authorization.k8s.io":      {"SubjectAccessReview", "SelfSubjectAccessReview", "SelfSubjectRulesReview"},
		"resource.k8s.io":           {"DeviceClass", "ResourceSlice", "DeviceTaintRule"},
		"internal.apiserver.k8s.io": {"StorageVersion"},
		"storagemigration.k8s.io":   {"StorageVersionMigration"},
	} {
		for _, k := range kinds {
			builtinClusterScoped[schema.GroupKind{Group: group, Kind: k}] = true
		}
	}
}

// IsBuiltinClusterScoped reports whether gk is a kind Kubernetes itself
// serves outside any namespace (ClusterRole, Namespace, CRDs, …): what is
// known of scopes without a cluster.
func IsBuiltinClusterScoped(gk schema.GroupKind) bool { return builtinClusterScoped[gk] }

// CheckOptions configure Check.
type CheckOptions struct {
	// Namespace is the namespace the objects deploy into (an Application's
	// namespace, `-n`). Required.
	Namespace string
	// AllowedSubjects are ApplyOptions.AllowedSubjects (the Application's
	// spec.rbac.allowedSubjects). Default none.
	AllowedSubjects []rbacv1.Subject
	// TrustRBAC leaves the RBAC guard out, as ApplyOptions.TrustRBAC does
	// (`keyless apply`). Default false: what the controller and `keyless
	// deploy` refuse.
	TrustRBAC bool
	// Source names where an object comes from (render.Result.Source), for
	// Refusal.Source. Default: sources are left empty.
	Source func(*unstructured.Unstructured) string
}

// Check runs, without a cluster, the guards apply runs before it writes
// anything — the namespace guard, the identity guard and (unless
// TrustRBAC) the RBAC guard, with the same checks — and returns every
// refusal, in the order of objs (an object is listed once per reason;
// apply stops at the first guard that refuses anything),
// nil when apply's guards would pass. objs are not changed.
//
// What only the cluster knows is left to apply: the scope of a kind that is
// neither built in (IsBuiltinClusterScoped) nor defined by a
// CustomResourceDefinition among objs (such an object is refused here only
// when it names another namespace), kinds the cluster does not serve,
// objects another inventory owns, and ServiceAccounts keyless impersonates
// beyond keyless-deployer and keyless-controller. The only error is
// ErrNoNamespace.
func Check(objs []*unstructured.Unstructured, opts CheckOptions) ([]Refusal, error) {
	if opts.Namespace == "" {
		return nil, ErrNoNamespace
	}
	scopes := crdScopes(objs)
	var out []Refusal
	for _, o := range objs {
		if isOwnNamespace(o, opts.Namespace) {
			continue
		}
		add := func(g Guard, reasons ...string) {
			for _, r := range reasons {
				if r == "" {
					continue
				}
				ref := Refusal{Object: RefOf(o), Guard: g, Reason: r}
				if opts.Source != nil {
					ref.Source = opts.Source(o)
				}
				out = append(out, ref)
			}
		}
		gk := o.GroupVersionKind().GroupKind()
		s := scopes[gk]
		if builtinClusterScoped[gk] {
			s = scopeCluster
		}
		add(GuardNamespace, namespaceReason(o, opts.Namespace, s))
		add(GuardIdentity, identityReasons(o, nil)...)
		if !opts.TrustRBAC {
			add(GuardRBAC, rbacReasons(o, opts.Namespace, nil, opts.AllowedSubjects)...)
		}
	}
	return out, nil
}

// crdScopes are the scopes of the kinds the CustomResourceDefinitions among
// objs define.
func crdScopes(objs []*unstructured.Unstructured) map[schema.GroupKind]scope {
	out := map[schema.GroupKind]scope{}
	for _, o := range objs {
		if o.GroupVersionKind().GroupKind() != (schema.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}) {
			continue
		}
		group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
		switch sc, _, _ := unstructured.NestedString(o.Object, "spec", "scope"); sc {
		case "Cluster":
			out[schema.GroupKind{Group: group, Kind: kind}] = scopeCluster
		case "Namespaced":
			out[schema.GroupKind{Group: group, Kind: kind}] = scopeNamespaced
		}
	}
	return out
}

package install

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// CredentialMountPolicyName is the name of the ValidatingAdmissionPolicy in
// config/install/policy, and of its binding: workloads may not mount or
// env-reference a Secret labelled kv1.CredentialLabel.
const CredentialMountPolicyName = "keyless-credential-mounts"

// policyPath is the folder of config/ holding the optional policy.
const policyPath = "install/policy"

// policyResources are the resources of the kinds config/install/policy holds.
var policyResources = map[string]schema.GroupVersionResource{
	"ValidatingAdmissionPolicy":        {Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicies"},
	"ValidatingAdmissionPolicyBinding": {Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicybindings"},
}

// applyPolicies applies the cluster-scoped admission policies server-side.
func applyPolicies(ctx context.Context, dyn dynamic.Interface, objs []*unstructured.Unstructured) error {
	for _, o := range objs {
		gvr, ok := policyResources[o.GetKind()]
		if !ok {
			return fmt.Errorf("%s %s in %s: not an admission policy kind", o.GetKind(), o.GetName(), policyPath)
		}
		if _, err := dyn.Resource(gvr).Apply(ctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: installManager, Force: true}); err != nil {
			return fmt.Errorf("applying %s %s (the API server needs ValidatingAdmissionPolicy v1, Kubernetes 1.30 or later): %w", o.GetKind(), o.GetName(), err)
		}
	}
	return nil
}

package engine

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

// podSpecPaths are where a pod spec sits in the objects that run pods: Pod
// itself, every workload with spec.template (Deployment, StatefulSet,
// DaemonSet, ReplicaSet, Job, and custom kinds shaped alike) and CronJob.
var podSpecPaths = [][]string{
	{"spec"},
	{"spec", "template", "spec"},
	{"spec", "jobTemplate", "spec", "template", "spec"},
}

// saUserPrefix starts the user name of a ServiceAccount.
const saUserPrefix = "system:serviceaccount:"

// protectedAccounts returns the ServiceAccounts ("ns/name") whose rights a
// render must not borrow: the identity cfg impersonates. keyless-deployer is
// protected in every namespace in any case.
func protectedAccounts(cfg *rest.Config) map[string]bool {
	out := map[string]bool{}
	if rest, ok := strings.CutPrefix(cfg.Impersonate.UserName, saUserPrefix); ok {
		if ns, name, ok := strings.Cut(rest, ":"); ok {
			out[ns+"/"+name] = true
		}
	}
	return out
}

// refuseIdentityTheft refuses what would let a repository pusher hold the
// deployer's rights outside Git: a pod (or pod template) running as an
// identity keyless writes with, whose token the pod would mount, and any
// ServiceAccount token Secret (a long-lived token minted by the cluster).
func refuseIdentityTheft(objs []*unstructured.Unstructured, protected map[string]bool) error {
	var refused []string
	for _, o := range objs {
		id := o.GetKind() + "/" + o.GetName()
		if o.GetKind() == "Secret" && o.GroupVersionKind().Group == "" {
			if t, _, _ := unstructured.NestedString(o.Object, "type"); t == string(corev1.SecretTypeServiceAccountToken) {
				refused = append(refused, fmt.Sprintf("%s: a %s Secret is a long-lived ServiceAccount token; use short-lived tokens (TokenRequest, projected volumes) instead", id, t))
				continue
			}
		}
		for _, p := range podSpecPaths {
			for _, field := range []string{"serviceAccountName", "serviceAccount"} {
				sa, found, _ := unstructured.NestedString(o.Object, append(append([]string{}, p...), field)...)
				if !found || sa == "" {
					continue
				}
				if sa == kv1.DefaultServiceAccountName || protected[o.GetNamespace()+"/"+sa] {
					refused = append(refused, fmt.Sprintf("%s: %s.%s is %q, the identity keyless deploys with; a pod must not run with the deployer's rights (use a ServiceAccount of its own)", id, strings.Join(p, "."), field, sa))
				}
			}
		}
	}
	if len(refused) > 0 {
		return fmt.Errorf("%w: %d object(s) would hand out the deployer's identity, nothing was applied:\n  %s", ErrRefused, len(refused), strings.Join(refused, "\n  "))
	}
	return nil
}

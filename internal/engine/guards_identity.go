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
// deployer's rights outside Git (identityReasons), all of it in one error.
func refuseIdentityTheft(objs []*unstructured.Unstructured, protected map[string]bool) error {
	var refused []Refusal
	for _, o := range objs {
		for _, r := range identityReasons(o, protected) {
			refused = append(refused, Refusal{Object: RefOf(o), Guard: GuardIdentity, Reason: r})
		}
	}
	return refusedError(refused, "object(s) would hand out the deployer's identity")
}

// identityReasons are why the identity guard refuses o: a pod (or pod
// template) running as an identity keyless writes with, whose token the pod
// would mount, or a ServiceAccount token Secret (a long-lived token minted
// by the cluster). protected is looked up with o's namespace (set by
// Confine).
func identityReasons(o *unstructured.Unstructured, protected map[string]bool) []string {
	if o.GetKind() == "Secret" && o.GroupVersionKind().Group == "" {
		if t, _, _ := unstructured.NestedString(o.Object, "type"); t == string(corev1.SecretTypeServiceAccountToken) {
			return []string{fmt.Sprintf("a %s Secret is a long-lived ServiceAccount token; use short-lived tokens (TokenRequest, projected volumes) instead", t)}
		}
	}
	var out []string
	for _, p := range podSpecPaths {
		for _, field := range []string{"serviceAccountName", "serviceAccount"} {
			sa, found, _ := unstructured.NestedString(o.Object, append(append([]string{}, p...), field)...)
			if !found || sa == "" {
				continue
			}
			if sa == kv1.DefaultServiceAccountName || protected[o.GetNamespace()+"/"+sa] {
				out = append(out, fmt.Sprintf("%s.%s is %q, the identity keyless deploys with; a pod must not run with the deployer's rights (use a ServiceAccount of its own)", strings.Join(p, "."), field, sa))
			}
		}
	}
	return out
}

package check

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/keyless-cd/keyless/internal/install"
)

const verbCreate = "create"

// installAccess is what `keyless install` writes, as (verb, group,
// resource, namespaced in the controller's namespace or in a managed one).
// Creating the controller's Roles also needs the rights they grant (or
// escalate): impersonating the deployer is the one a namespace admin lacks.
var installAccess = []struct {
	verb, group, resource string
	namespaced            bool
}{
	{verbCreate, "apiextensions.k8s.io", "customresourcedefinitions", false},
	{verbCreate, "", "namespaces", false},
	{"patch", "", "namespaces", false},
	{verbCreate, "", "serviceaccounts", true},
	{verbCreate, "rbac.authorization.k8s.io", "roles", true},
	{verbCreate, "rbac.authorization.k8s.io", "rolebindings", true},
	{verbCreate, "apps", "deployments", true},
	{verbCreate, "", "services", true},
	{verbCreate, "", "secrets", true},
	{verbCreate, "networking.k8s.io", "networkpolicies", true},
	{verbCreate, "policy", "poddisruptionbudgets", true},
	{"impersonate", "", "serviceaccounts", true},
}

// Pre checks, before an install, that the cluster's Kubernetes version is
// supported, that the person running it may write what install writes,
// and how Pod Security treats the controller's namespace.
func Pre(ctx context.Context, cs kubernetes.Interface, opts Options) *Report {
	opts.defaults()
	r := &Report{}
	checkServerVersion(r, cs)
	checkInstallAccess(ctx, r, cs, opts)
	checkPodSecurity(ctx, r, cs, opts)
	return r
}

func checkServerVersion(r *Report, cs kubernetes.Interface) {
	const name = "Kubernetes version"
	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		r.addf(name, StatusFailed, "cannot read the API server's version: %v", err)
		return
	}
	minor, err := strconv.Atoi(strings.TrimRight(v.Minor, "+"))
	switch {
	case err != nil || v.Major != "1":
		r.addf(name, StatusWarning, "%s: not a version keyless knows (it needs 1.%d or later)", v.GitVersion, MinKubernetesMinor)
	case minor < MinKubernetesMinor:
		r.addf(name, StatusFailed, "%s: keyless needs Kubernetes 1.%d or later (CRD validation ratcheting, ValidatingAdmissionPolicy, structured authentication configuration)", v.GitVersion, MinKubernetesMinor)
	default:
		r.addf(name, StatusOK, "%s (1.%d or later)", v.GitVersion, MinKubernetesMinor)
	}
}

func checkInstallAccess(ctx context.Context, r *Report, cs kubernetes.Interface, opts Options) {
	const name = "permissions to install"
	var missing []string
	for _, a := range installAccess {
		ns := ""
		if a.namespaced {
			ns = opts.ControllerNamespace
		}
		review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: a.verb, Group: a.group, Resource: a.resource, Namespace: ns},
		}}
		got, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		if err != nil {
			r.addf(name, StatusFailed, "cannot ask the API server (SelfSubjectAccessReview): %v", err)
			return
		}
		if !got.Status.Allowed {
			missing = append(missing, describeAccess(a.verb, a.group, a.resource, ns))
		}
	}
	if len(missing) > 0 {
		r.addf(name, StatusFailed, "you may not %s: keyless install is a cluster admin's step (once; teams then need no cluster rights)", strings.Join(missing, ", "))
		return
	}
	r.addf(name, StatusOK, "you may create the CRD, namespaces, and the controller's objects and Roles in %s", opts.ControllerNamespace)
}

func describeAccess(verb, group, resource, ns string) string {
	res := resource
	if group != "" {
		res += "." + group
	}
	if ns == "" {
		return verb + " " + res
	}
	return fmt.Sprintf("%s %s in %s", verb, res, ns)
}

// checkPodSecurity reports how Pod Security admission treats the
// controller's namespace: install labels it restricted (the controller's
// pods pass it); a namespace that exists with a weaker or no level is
// tightened, one with a stricter custom policy is the admin's.
func checkPodSecurity(ctx context.Context, r *Report, cs kubernetes.Interface, opts Options) {
	const name = "Pod Security"
	ns, err := cs.CoreV1().Namespaces().Get(ctx, opts.ControllerNamespace, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		r.addf(name, StatusOK, "namespace %s does not exist yet: install creates it with %s=%s (the controller's pods meet it)",
			opts.ControllerNamespace, install.PodSecurityEnforceLabel, install.PodSecurityRestricted)
		return
	case err != nil:
		r.addf(name, StatusWarning, "cannot read namespace %s: %v", opts.ControllerNamespace, err)
		return
	}
	level := ns.Labels[install.PodSecurityEnforceLabel]
	switch level {
	case install.PodSecurityRestricted:
		r.addf(name, StatusOK, "namespace %s enforces %s", opts.ControllerNamespace, level)
	case "":
		r.addf(name, StatusWarning, "namespace %s enforces no Pod Security level: install labels it %s", opts.ControllerNamespace, install.PodSecurityRestricted)
	default:
		r.addf(name, StatusWarning, "namespace %s enforces %q: install tightens it to %s", opts.ControllerNamespace, level, install.PodSecurityRestricted)
	}
}

package engine

import (
	"fmt"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

// Role names keyless's own identities hold: the deployer's and the
// controller's Roles of every managed namespace, and the Roles `keyless
// oidc rbac` generates for pipelines (PipelineRolePrefix + issuer and
// project). No render may define, change or bind them.
const (
	DeployerRoleName   = kv1.DefaultServiceAccountName
	ControllerRoleName = "keyless-controller"
	PipelineRolePrefix = "keyless-ci-"
)

// escalatingVerbs are what lets a Role's holder reach past its own rights:
// bind any Role, grant rights they lack, or act as someone else.
var escalatingVerbs = []string{"bind", "escalate", "impersonate"}

// isKeylessRole reports whether name is a Role keyless's identities hold.
func isKeylessRole(name string) bool {
	return name == DeployerRoleName || name == ControllerRoleName || strings.HasPrefix(name, PipelineRolePrefix)
}

// isKeylessAccount reports whether a ServiceAccount is one keyless writes
// or runs as.
func isKeylessAccount(namespace, name string, protected map[string]bool) bool {
	return name == kv1.DefaultServiceAccountName || name == ControllerRoleName || protected[namespace+"/"+name]
}

// refuseRBACEscalation refuses what would let a repository pusher hand out
// rights outside Git (rbacReasons), all of it in one error.
func refuseRBACEscalation(objs []*unstructured.Unstructured, namespace string, protected map[string]bool, allowed []rbacv1.Subject) error {
	var refused []Refusal
	for _, o := range objs {
		for _, r := range rbacReasons(o, namespace, protected, allowed) {
			refused = append(refused, Refusal{Object: RefOf(o), Guard: GuardRBAC, Reason: r})
		}
	}
	return refusedError(refused, "RBAC object(s) would hand out rights outside Git")
}

// rbacReasons are why the RBAC guard refuses o: a Role or RoleBinding that
// is, or binds, one of keyless's own Roles; a binding that gives keyless's
// identities more rights; a Role granting bind, escalate or impersonate (or
// every verb on RBAC); and a binding to a User, Group or another
// namespace's ServiceAccount that allowed does not name. Whoever can push
// could otherwise bind the deployer's Role to themselves and keep those
// rights after the commit is reverted.
func rbacReasons(o *unstructured.Unstructured, namespace string, protected map[string]bool, allowed []rbacv1.Subject) []string {
	if o.GroupVersionKind().Group != rbacv1.GroupName {
		return nil
	}
	switch o.GetKind() {
	case "Role":
		if isKeylessRole(o.GetName()) {
			return []string{fmt.Sprintf("%q is a Role keyless's own identities hold; only the cluster admin's install may change it", o.GetName())}
		}
		role := &rbacv1.Role{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, role); err != nil {
			return []string{fmt.Sprintf("not a valid Role: %v", err)}
		}
		return escalatingRules(role.Rules)
	case "RoleBinding":
		rb := &rbacv1.RoleBinding{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, rb); err != nil {
			return []string{fmt.Sprintf("not a valid RoleBinding: %v", err)}
		}
		return bindingProblems(rb, namespace, protected, allowed)
	}
	return nil
}

// escalatingRules names the rules of a Role that grant an escalating verb,
// or every verb on RBAC objects.
func escalatingRules(rules []rbacv1.PolicyRule) []string {
	var out []string
	for i, r := range rules {
		for _, v := range r.Verbs {
			if slices.Contains(escalatingVerbs, v) {
				out = append(out, fmt.Sprintf("rules[%d] grants %q; a Role from Git never grants bind, escalate or impersonate", i, v))
			}
		}
		if slices.Contains(r.Verbs, rbacv1.VerbAll) && (slices.Contains(r.APIGroups, rbacv1.APIGroupAll) || slices.Contains(r.APIGroups, rbacv1.GroupName)) {
			out = append(out, fmt.Sprintf("rules[%d] grants every verb (\"*\") on %v, which includes bind and escalate", i, r.APIGroups))
		}
	}
	return out
}

// bindingProblems names what is wrong with a RoleBinding: its Role is one
// of keyless's, a subject is one of keyless's identities, or a subject is
// not allowed.
func bindingProblems(rb *rbacv1.RoleBinding, namespace string, protected map[string]bool, allowed []rbacv1.Subject) []string {
	var out []string
	if isKeylessRole(rb.RoleRef.Name) {
		out = append(out, fmt.Sprintf("binds %s %q, the rights of keyless's own identities; nobody gets them through Git", rb.RoleRef.Kind, rb.RoleRef.Name))
	}
	for i, s := range rb.Subjects {
		where := fmt.Sprintf("subjects[%d] %s %q", i, s.Kind, s.Name)
		switch {
		case s.Kind == rbacv1.ServiceAccountKind && isKeylessAccount(orDefault(s.Namespace, namespace), s.Name, protected):
			out = append(out, where+" is an identity keyless writes as; its rights are the cluster admin's to set")
		case s.Kind == rbacv1.ServiceAccountKind && orDefault(s.Namespace, namespace) == namespace:
			// The namespace's own ServiceAccounts: what Git is for.
		case !subjectAllowed(s, namespace, allowed):
			out = append(out, where+" is not in the Application's spec.rbac.allowedSubjects; a binding from Git names only the namespace's own ServiceAccounts and the people the namespace admin listed")
		}
	}
	return out
}

// subjectAllowed reports whether s is one of allowed (same kind, name, and
// for a ServiceAccount namespace).
func subjectAllowed(s rbacv1.Subject, namespace string, allowed []rbacv1.Subject) bool {
	for _, a := range allowed {
		if a.Kind != s.Kind || a.Name != s.Name {
			continue
		}
		if s.Kind != rbacv1.ServiceAccountKind || orDefault(a.Namespace, namespace) == orDefault(s.Namespace, namespace) {
			return true
		}
	}
	return false
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

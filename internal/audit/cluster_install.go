package audit

import (
	"context"
	"fmt"
	"sort"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/kubernetes"
	"k8s.io/kubectl/pkg/util/rbac"

	"github.com/keyless-cd/keyless/internal/engine"
)

// InstallGrant is what one keyless identity may do in one namespace, through
// one binding: the blast radius an auditor asks for.
type InstallGrant struct {
	Namespace string   `json:"namespace"`
	Subject   string   `json:"subject"`
	Role      string   `json:"role"`
	Rules     []string `json:"rules"`
}

// clusterWideChecks are what no keyless identity may do across the cluster,
// asked of the apiserver's authorizer with a SubjectAccessReview.
var clusterWideChecks = []authorizationv1.ResourceAttributes{
	{Verb: "list", Resource: "secrets"},
	{Verb: "create", Resource: "deployments", Group: "apps"},
	{Verb: "create", Resource: "clusterrolebindings", Group: "rbac.authorization.k8s.io"},
}

// isKeylessBinding reports bindings of keyless's install (config/install) and
// of `keyless oidc rbac`.
func isKeylessBinding(b rbacv1.RoleBinding) bool {
	return strings.HasPrefix(b.Name, "keyless") || b.Labels[engine.ManagedByLabel] == engine.ManagedByValue
}

// subjectName is the username the apiserver sees for a subject.
func subjectName(s rbacv1.Subject) string {
	if s.Kind == rbacv1.ServiceAccountKind {
		return "system:serviceaccount:" + s.Namespace + ":" + s.Name
	}
	return s.Name
}

// installGrants lists, per namespace, what each keyless subject's Role allows.
func installGrants(bindings []rbacv1.RoleBinding, roles map[string]rbacv1.Role, clusterRoles map[string]rbacv1.ClusterRole) []InstallGrant {
	var out []InstallGrant
	for _, b := range bindings {
		if !isKeylessBinding(b) {
			continue
		}
		var rules []rbacv1.PolicyRule
		if b.RoleRef.Kind == "ClusterRole" {
			rules = clusterRoles[b.RoleRef.Name].Rules
		} else {
			rules = roles[b.Namespace+"/"+b.RoleRef.Name].Rules
		}
		for _, s := range b.Subjects {
			if s.Kind == rbacv1.ServiceAccountKind && s.Namespace == "" {
				s.Namespace = b.Namespace
			}
			out = append(out, InstallGrant{Namespace: b.Namespace, Subject: subjectName(s), Role: b.RoleRef.Kind + "/" + b.RoleRef.Name, Rules: describeRules(rules)})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Subject < out[j].Subject
	})
	return out
}

// describeRules renders rules compactly ("get,list deployments.apps"), in
// kubectl's canonical order.
func describeRules(rules []rbacv1.PolicyRule) []string {
	compact, err := rbac.CompactRules(rules)
	if err != nil {
		compact = rules
	}
	var out []string
	for _, r := range compact {
		var res []string
		for _, g := range r.APIGroups {
			for _, x := range r.Resources {
				if g != "" {
					x += "." + g
				}
				res = append(res, x)
			}
		}
		s := strings.Join(r.Verbs, ",") + " " + strings.Join(res, ",")
		if len(r.ResourceNames) > 0 {
			s += " (only " + strings.Join(r.ResourceNames, ",") + ")"
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// checkClusterWide asks the authorizer whether each keyless subject may do
// any of clusterWideChecks across all namespaces; an allowed check is a KL104
// finding. It returns false when the caller may not create
// SubjectAccessReviews.
func checkClusterWide(ctx context.Context, cs kubernetes.Interface, grants []InstallGrant) ([]Finding, bool, error) {
	subjects := sets.New[string]()
	for _, g := range grants {
		subjects.Insert(g.Subject)
	}
	var out []Finding
	for _, user := range sets.List(subjects) {
		var groups []string
		if parts := strings.Split(user, ":"); len(parts) == 4 && parts[1] == "serviceaccount" {
			groups = []string{"system:serviceaccounts", "system:serviceaccounts:" + parts[2], "system:authenticated"}
		}
		for _, check := range clusterWideChecks {
			ra := check
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: user, Groups: groups, ResourceAttributes: &ra}}
			res, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, createOpts)
			if err != nil {
				if isForbidden(err) {
					return nil, false, nil
				}
				return nil, false, fmt.Errorf("asking whether %s may %s %s: %w", user, ra.Verb, ra.Resource, err)
			}
			if res.Status.Allowed {
				out = append(out, Rules["KL104"].finding("subject/"+user, 0, fmt.Sprintf("%s may %s %s in every namespace", user, ra.Verb, ra.Resource)))
			}
		}
	}
	return out, true, nil
}

package audit

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Cluster rules (read-only checks of a live cluster).
func init() {
	Rules["KL101"] = Rule{"KL101", High, "a service-account-token Secret is a long-lived static token that never expires", "delete it; use short-lived tokens (TokenRequest) or OIDC federation"}
	Rules["KL102"] = Rule{"KL102", Critical, "a non-system subject with cluster-admin or wildcard rights cluster-wide can do anything", "bind namespaced Roles listing only what is needed"}
	Rules["KL103"] = Rule{"KL103", High, "a CI/CD controller with a ClusterRole can write to every namespace, which compliance settings forbid", "run it namespaced, or use keyless's namespaced install (config/install)"}
	Rules["KL104"] = Rule{"KL104", Critical, "keyless must hold no cluster-wide rights", "remove the ClusterRoleBinding; keyless's install is namespaced only"}
	Rules["KL106"] = Rule{"KL106", Medium, "a namespace keyless deploys into does not enforce Pod Security \"restricted\": a pod committed to Git may run privileged, as root or on the host", "label it pod-security.kubernetes.io/enforce=restricted (keyless install does)"}
	Rules["KL105"] = Rule{"KL105", High, "reading every Secret, impersonating, escalating or binding cluster-wide lets the subject reach any credential or grant itself more", "bind a namespaced Role; limit impersonate by resourceNames"}
}

// ClusterOptions configure ScanCluster.
type ClusterOptions struct {
	// Namespace limits namespaced checks; "" means all namespaces.
	Namespace string
}

// ClusterReport is the result of a cluster scan.
type ClusterReport struct {
	Findings []Finding `json:"findings"`
	// Install is, per namespace, what each keyless identity (the controller,
	// keyless-deployer, `keyless oidc rbac` pipelines) may do.
	Install []InstallGrant `json:"install"`
	// InstallClusterWideChecked is true when the apiserver confirmed, by
	// SubjectAccessReview, that no keyless identity can list Secrets, create
	// Deployments or create ClusterRoleBindings across the cluster.
	InstallClusterWideChecked bool `json:"installClusterWideChecked"`
	// Unreadable lists what the caller's permissions did not allow reading.
	Unreadable []string `json:"unreadable,omitempty"`
}

var createOpts = metav1.CreateOptions{}

func isForbidden(err error) bool { return apierrors.IsForbidden(err) }

// knownControllers are GitOps/CI controllers whose default installs bind ClusterRoles.
var knownControllers = []string{"argocd-application-controller", "argocd-server", "kustomize-controller", "helm-controller", "gitlab-agent", "flux"}

// ScanCluster checks a live cluster, read-only, degrading where it lacks rights.
func ScanCluster(ctx context.Context, cs kubernetes.Interface, opts ClusterOptions) (*ClusterReport, error) {
	rep := &ClusterReport{}
	cannot := func(what string, err error) bool {
		if apierrors.IsForbidden(err) {
			rep.Unreadable = append(rep.Unreadable, what+" (forbidden)")
			return true
		}
		return false
	}
	secrets, err := cs.CoreV1().Secrets(opts.Namespace).List(ctx, metav1.ListOptions{FieldSelector: "type=" + string(corev1.SecretTypeServiceAccountToken)})
	if err != nil && !cannot("secrets", err) {
		return nil, err
	}

	roles := map[string]rbacv1.ClusterRole{}
	crs, err := cs.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{})
	switch {
	case err == nil:
		for _, r := range crs.Items {
			roles[r.Name] = r
		}
	case !cannot("clusterroles", err):
		return nil, err
	}
	var crbList []rbacv1.ClusterRoleBinding
	crbs, err := cs.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{})
	switch {
	case err == nil:
		crbList = crbs.Items
		for _, b := range crbs.Items {
			rep.Findings = append(rep.Findings, bindingRisks(b, roles[b.RoleRef.Name])...)
		}
	case !cannot("clusterrolebindings", err):
		return nil, err
	}
	var rbList []rbacv1.RoleBinding
	rbs, err := cs.RbacV1().RoleBindings(opts.Namespace).List(ctx, metav1.ListOptions{})
	switch {
	case err == nil:
		rbList = rbs.Items
	case !cannot("rolebindings", err):
		return nil, err
	}
	nsRoles := map[string]rbacv1.Role{}
	rls, err := cs.RbacV1().Roles(opts.Namespace).List(ctx, metav1.ListOptions{})
	switch {
	case err == nil:
		for _, r := range rls.Items {
			nsRoles[r.Namespace+"/"+r.Name] = r
		}
	case !cannot("roles", err):
		return nil, err
	}
	if secrets != nil {
		for _, sec := range secrets.Items {
			sa := sec.Annotations[corev1.ServiceAccountNameKey]
			rep.Findings = append(rep.Findings, Rules["KL101"].finding("secret/"+sec.Namespace+"/"+sec.Name, 0,
				fmt.Sprintf("static token for ServiceAccount %s/%s%s", sec.Namespace, sa, boundRoles(sec.Namespace, sa, crbList, rbList))))
		}
	}
	rep.Install = installGrants(rbList, nsRoles, roles)
	if len(rep.Install) > 0 {
		found, checked, err := checkClusterWide(ctx, cs, rep.Install)
		if err != nil {
			return nil, err
		}
		if !checked {
			rep.Unreadable = append(rep.Unreadable, "subjectaccessreviews (forbidden: keyless identities' cluster-wide rights not confirmed)")
		}
		rep.InstallClusterWideChecked = checked && len(found) == 0
		rep.Findings = append(rep.Findings, found...)
		psa, err := podSecurityFindings(ctx, cs, rep.Install)
		switch {
		case err == nil:
			rep.Findings = append(rep.Findings, psa...)
		case !cannot("namespaces", err):
			return nil, err
		}
	}
	sortFindings(rep.Findings)
	return rep, nil
}

// podSecurityFindings reports the namespaces keyless deploys into (those
// with a keyless-deployer grant) that do not enforce Pod Security restricted.
func podSecurityFindings(ctx context.Context, cs kubernetes.Interface, grants []InstallGrant) ([]Finding, error) {
	seen := map[string]bool{}
	var out []Finding
	for _, g := range grants {
		if seen[g.Namespace] || !strings.HasSuffix(g.Subject, ":keyless-deployer") {
			continue
		}
		seen[g.Namespace] = true
		ns, err := cs.CoreV1().Namespaces().Get(ctx, g.Namespace, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		if level := ns.Labels[podSecurityEnforceLabel]; level != "restricted" {
			if level == "" {
				level = "none"
			}
			out = append(out, Rules["KL106"].finding("namespace/"+g.Namespace, 0, fmt.Sprintf("namespace %s enforces Pod Security %q", g.Namespace, level)))
		}
	}
	return out, nil
}

// podSecurityEnforceLabel is Pod Security Admission's enforce label.
const podSecurityEnforceLabel = "pod-security.kubernetes.io/enforce"

func bindingRisks(b rbacv1.ClusterRoleBinding, role rbacv1.ClusterRole) []Finding {
	var out []Finding
	where := "clusterrolebinding/" + b.Name
	broad := b.RoleRef.Name == "cluster-admin" || wildcard(role)
	for _, s := range b.Subjects {
		name := s.Name
		if s.Kind == rbacv1.ServiceAccountKind {
			name = "system:serviceaccount:" + s.Namespace + ":" + s.Name
		}
		switch {
		case strings.Contains(b.Name, "keyless") || strings.Contains(name, "keyless"):
			out = append(out, Rules["KL104"].finding(where, 0, fmt.Sprintf("%s binds ClusterRole %s to %s", b.Name, b.RoleRef.Name, name)))
		case isKnownController(b.Name) || isKnownController(name):
			out = append(out, Rules["KL103"].finding(where, 0, fmt.Sprintf("GitOps/CI controller %s holds ClusterRole %s", name, b.RoleRef.Name)))
		case broad && !isSystem(b, s):
			out = append(out, Rules["KL102"].finding(where, 0, fmt.Sprintf("%s %s has ClusterRole %s cluster-wide", s.Kind, name, b.RoleRef.Name)))
		case !isSystem(b, s):
			if risky := riskyRights(role); risky != "" {
				out = append(out, Rules["KL105"].finding(where, 0, fmt.Sprintf("%s %s may %s cluster-wide (ClusterRole %s)", s.Kind, name, risky, b.RoleRef.Name)))
			}
		}
	}
	return out
}

func wildcard(r rbacv1.ClusterRole) bool {
	for _, rule := range r.Rules {
		hasVerb, hasRes := false, false
		for _, v := range rule.Verbs {
			hasVerb = hasVerb || v == "*"
		}
		for _, res := range rule.Resources {
			hasRes = hasRes || res == "*"
		}
		if hasVerb && hasRes {
			return true
		}
	}
	return false
}

// isSystem reports Kubernetes' own bindings (system: names, kube-system SAs).
func isSystem(b rbacv1.ClusterRoleBinding, s rbacv1.Subject) bool {
	return strings.HasPrefix(b.Name, "system:") || strings.HasPrefix(s.Name, "system:") || (s.Kind == rbacv1.ServiceAccountKind && s.Namespace == "kube-system")
}

func isKnownController(name string) bool {
	for _, k := range knownControllers {
		if strings.Contains(name, k) {
			return true
		}
	}
	return false
}

// riskyRights names the secret-reading and privilege-escalating rights of a
// role: get/list/watch secrets, impersonate (without resourceNames), escalate,
// bind.
func riskyRights(r rbacv1.ClusterRole) string {
	var out []string
	add := func(s string) {
		for _, x := range out {
			if x == s {
				return
			}
		}
		out = append(out, s)
	}
	for _, rule := range r.Rules {
		for _, v := range rule.Verbs {
			for _, res := range rule.Resources {
				switch {
				case res == "secrets" && (v == "get" || v == "list" || v == "watch" || v == "*"):
					add("read secrets")
				case v == "impersonate" && len(rule.ResourceNames) == 0:
					add("impersonate " + res)
				case v == "escalate" || v == "bind":
					add(v + " " + res)
				}
			}
		}
	}
	return strings.Join(out, ", ")
}

// boundRoles describes a ServiceAccount's bindings: its effective rights.
func boundRoles(ns, sa string, crbs []rbacv1.ClusterRoleBinding, rbs []rbacv1.RoleBinding) string {
	var out []string
	has := func(subjects []rbacv1.Subject, bindingNS string) bool {
		for _, s := range subjects {
			sns := s.Namespace
			if sns == "" {
				sns = bindingNS
			}
			if s.Kind == rbacv1.ServiceAccountKind && s.Name == sa && sns == ns {
				return true
			}
		}
		return false
	}
	for _, b := range crbs {
		if has(b.Subjects, "") {
			out = append(out, "ClusterRole "+b.RoleRef.Name+" cluster-wide")
		}
	}
	for _, b := range rbs {
		if has(b.Subjects, b.Namespace) {
			out = append(out, b.RoleRef.Kind+" "+b.RoleRef.Name+" in "+b.Namespace)
		}
	}
	if len(out) == 0 {
		return " (no bindings found)"
	}
	return "; it grants " + strings.Join(out, ", ")
}

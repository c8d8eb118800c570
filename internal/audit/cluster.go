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
}

// ClusterOptions configure ScanCluster.
type ClusterOptions struct {
	// Namespace limits namespaced checks; "" means all namespaces.
	Namespace string
}

// ClusterReport is the result of a cluster scan.
type ClusterReport struct {
	Findings []Finding `json:"findings"`
	// Unreadable lists what the caller's permissions did not allow reading.
	Unreadable []string `json:"unreadable,omitempty"`
}

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
	switch {
	case err == nil:
		for _, s := range secrets.Items {
			rep.Findings = append(rep.Findings, Rules["KL101"].finding("secret/"+s.Namespace+"/"+s.Name, 0,
				fmt.Sprintf("static token for ServiceAccount %s/%s", s.Namespace, s.Annotations[corev1.ServiceAccountNameKey])))
		}
	case !cannot("secrets", err):
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
	crbs, err := cs.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{})
	switch {
	case err == nil:
		for _, b := range crbs.Items {
			rep.Findings = append(rep.Findings, bindingRisks(b, roles[b.RoleRef.Name])...)
		}
	case !cannot("clusterrolebindings", err):
		return nil, err
	}
	sortFindings(rep.Findings)
	return rep, nil
}

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

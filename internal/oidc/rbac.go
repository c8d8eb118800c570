package oidc

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keyless-cd/keyless/internal/engine"
	"github.com/keyless-cd/keyless/internal/render"
)

// DeployVerbs are what a pipeline may do to the kinds its manifests contain.
var DeployVerbs = []string{"get", "list", "watch", "create", "patch", "update", "delete"}

// RBACOptions configure RBAC.
type RBACOptions struct {
	// Root bounds the manifests read; Manifests paths are relative to it.
	Root string
	// InventoryName is the --name `keyless deploy` will use (default: the
	// manifests folder's base name).
	InventoryName string
}

var nonName = regexp.MustCompile(`[^a-z0-9-]+`)

// roleName is keyless-ci-<issuer>-<project>, a valid object name.
func roleName(pl Pipeline) string {
	n := strings.Trim(nonName.ReplaceAllString(strings.ToLower("keyless-ci-"+pl.Issuer+"-"+pl.Project), "-"), "-")
	if len(n) > 63 {
		n = strings.TrimRight(n[:63], "-")
	}
	return n
}

// RBAC returns, per pipeline, a Role in its namespace listing only the kinds
// its manifests contain, and a RoleBinding to its exact usernames. Never a
// ClusterRole or ClusterRoleBinding.
func (p *FederationPolicy) RBAC(ctx context.Context, opts RBACOptions) ([]*rbacv1.Role, []*rbacv1.RoleBinding, error) {
	var roles []*rbacv1.Role
	var bindings []*rbacv1.RoleBinding
	for i, pl := range p.Pipelines {
		if pl.Manifests == "" {
			return nil, nil, fmt.Errorf("pipelines[%d]: manifests is required to derive the Role", i)
		}
		res, err := render.Render(ctx, render.Options{Root: opts.Root, Path: pl.Manifests, Namespace: pl.Namespace})
		if err != nil {
			return nil, nil, fmt.Errorf("pipelines[%d] (%s): %w", i, pl.Project, err)
		}
		byGroup := map[string]map[string]bool{}
		for _, o := range res.Objects {
			gvk := o.GroupVersionKind()
			plural, _ := apimeta.UnsafeGuessKindToResource(gvk)
			if byGroup[gvk.Group] == nil {
				byGroup[gvk.Group] = map[string]bool{}
			}
			byGroup[gvk.Group][plural.Resource] = true
		}
		groups := make([]string, 0, len(byGroup))
		for g := range byGroup {
			groups = append(groups, g)
		}
		sort.Strings(groups)
		var rules []rbacv1.PolicyRule
		for _, g := range groups {
			var resources []string
			for r := range byGroup[g] {
				resources = append(resources, r)
			}
			sort.Strings(resources)
			rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{g}, Resources: resources, Verbs: DeployVerbs})
		}
		inv := opts.InventoryName
		if inv == "" {
			inv = filepath.Base(filepath.Clean(pl.Manifests))
		}
		// keyless deploy keeps its inventory (what to prune next time) in one
		// ConfigMap; create cannot be limited to a name in RBAC.
		if !byGroup[""]["configmaps"] {
			rules = append(rules,
				rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{engine.InventoryConfigMapPrefix + inv}, Verbs: []string{"get", "update", "patch"}},
				rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"create"}})
		}
		name := roleName(pl)
		labels := map[string]string{engine.ManagedByLabel: engine.ManagedByValue}
		roles = append(roles, &rbacv1.Role{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: pl.Namespace, Labels: labels},
			Rules:      rules,
		})
		var subjects []rbacv1.Subject
		for _, u := range p.Usernames(pl) {
			subjects = append(subjects, rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: u})
		}
		bindings = append(bindings, &rbacv1.RoleBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: pl.Namespace, Labels: labels},
			Subjects:   subjects,
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		})
	}
	return roles, bindings, nil
}

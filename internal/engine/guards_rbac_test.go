package engine

import (
	"errors"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func rbacObject(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	o := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &o.Object); err != nil {
		t.Fatal(err)
	}
	return o
}

func binding(role, subjects string) string {
	return "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: rb}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: " + role + "}\nsubjects:\n" + subjects
}

func role(name, rules string) string {
	return "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: " + name + "}\nrules:\n" + rules
}

// TestRBACFromGitHandsOutNoRights: what a pusher could commit to hold rights
// outside Git is refused, naming the object and why; what a team needs
// (its own Roles bound to its own ServiceAccounts, people the namespace
// admin listed) passes.
func TestRBACFromGitHandsOutNoRights(t *testing.T) {
	allowed := []rbacv1.Subject{{Kind: rbacv1.UserKind, Name: "alice"}, {Kind: rbacv1.GroupKind, Name: "oncall"},
		{Kind: rbacv1.ServiceAccountKind, Name: "ci", Namespace: "tools"}}
	protected := map[string]bool{"team/team-deployer": true}
	cases := []struct {
		name, doc, want string
	}{
		{"the deployer's Role bound to mallory", binding("keyless-deployer", "- {kind: User, name: mallory}\n"), "binds Role \"keyless-deployer\""},
		{"the deployer's Role bound to an allowed user", binding("keyless-deployer", "- {kind: User, name: alice}\n"), "binds Role \"keyless-deployer\""},
		{"the controller's Role bound to a ServiceAccount", binding("keyless-controller", "- {kind: ServiceAccount, name: app}\n"), "keyless-controller"},
		{"a pipeline's Role bound", binding("keyless-ci-gitlab-com-org-app", "- {kind: ServiceAccount, name: app}\n"), "keyless-ci-gitlab-com-org-app"},
		{"a team Role to a user not allowed", binding("app-reader", "- {kind: User, name: mallory}\n"), "subjects[0] User \"mallory\" is not in the Application's spec.rbac.allowedSubjects"},
		{"a team Role to a group not allowed", binding("app-reader", "- {kind: Group, name: system:authenticated}\n"), "Group \"system:authenticated\""},
		{"another namespace's ServiceAccount", binding("app-reader", "- {kind: ServiceAccount, name: x, namespace: other}\n"), "ServiceAccount \"x\""},
		{"more rights for the deployer", binding("app-reader", "- {kind: ServiceAccount, name: keyless-deployer}\n"), "an identity keyless writes as"},
		{"more rights for the impersonated account", binding("app-reader", "- {kind: ServiceAccount, name: team-deployer, namespace: team}\n"), "an identity keyless writes as"},
		{"the deployer's Role rewritten", role("keyless-deployer", "- {apiGroups: ['*'], resources: ['*'], verbs: ['*']}\n"), "Role/keyless-deployer"},
		{"a Role granting bind", role("binder", "- {apiGroups: [rbac.authorization.k8s.io], resources: [roles], verbs: [bind]}\n"), "grants \"bind\""},
		{"a Role granting escalate", role("esc", "- {apiGroups: [rbac.authorization.k8s.io], resources: [roles], verbs: [escalate]}\n"), "grants \"escalate\""},
		{"a Role granting impersonate", role("imp", "- {apiGroups: [''], resources: [serviceaccounts], verbs: [impersonate]}\n"), "grants \"impersonate\""},
		{"a Role granting every verb on everything", role("all", "- {apiGroups: ['*'], resources: ['*'], verbs: ['*']}\n"), "every verb"},
		{"fine: own Role to own ServiceAccount", binding("app-reader", "- {kind: ServiceAccount, name: app}\n- {kind: ServiceAccount, name: app2, namespace: team}\n"), ""},
		{"fine: allowed people", binding("app-reader", "- {kind: User, name: alice, apiGroup: rbac.authorization.k8s.io}\n- {kind: Group, name: oncall}\n- {kind: ServiceAccount, name: ci, namespace: tools}\n"), ""},
		{"fine: a reading Role", role("app-reader", "- {apiGroups: [''], resources: [configmaps], verbs: [get, list, watch]}\n"), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := refuseRBACEscalation([]*unstructured.Unstructured{rbacObject(t, tc.doc)}, "team", protected, allowed)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrRefused naming %q", err, tc.want)
			}
		})
	}
}

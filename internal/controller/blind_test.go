package controller_test

import (
	"fmt"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

// TestUnwatchableKindHealsAtInterval: the deployer may manage ServiceAccounts
// but the controller may not watch them (config/install grants no list/watch
// of that kind). A manual edit of such an object is not seen by a watch; it is
// found and reverted at the next interval, by re-applying.
func TestUnwatchableKindHealsAtInterval(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "deployer-serviceaccounts", Namespace: appNS},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"serviceaccounts"}, Verbs: []string{"get", "list", "watch", "create", "patch", "update", "delete"}}}}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "deployer-serviceaccounts", Namespace: appNS},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "keyless-deployer", Namespace: appNS}}}
	if err := e.admin.Create(ctx, role); err != nil {
		t.Fatal(err)
	}
	if err := e.admin.Create(ctx, binding); err != nil {
		t.Fatal(err)
	}
	e.startController(time.Hour)
	files := manifests("registry.example.com/web:1.0", "hello")
	files["deploy/sa.yaml"] = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: web\nautomountServiceAccountToken: false\n"
	e.push(files, nil, "web with its own ServiceAccount")
	e.createApp("web", "deploy", 5*time.Second)
	// The deployer's new Role takes effect asynchronously: a 403 is retried.
	e.waitApp("web", "Ready", 60*time.Second, ready)

	sa, err := e.cs.CoreV1().ServiceAccounts(appNS).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	sa.AutomountServiceAccountToken = &yes
	if _, err := e.cs.CoreV1().ServiceAccounts(appNS).Update(ctx, sa, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the ServiceAccount edit to be reverted at the interval", func() (bool, string) {
		sa, err := e.cs.CoreV1().ServiceAccounts(appNS).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return sa.AutomountServiceAccountToken != nil && !*sa.AutomountServiceAccountToken, fmt.Sprint(*sa.AutomountServiceAccountToken)
	})
	// The status (with the history) is written after the apply that reverted
	// the edit: wait for it rather than read it at once.
	e.waitApp("web", "the revert recorded as a drift sync in the history", 20*time.Second, func(a *kv1.Application) bool {
		return len(a.Status.History) > 0 && a.Status.History[0].Trigger == "drift" && a.Status.History[0].Result == "Succeeded"
	})

	// The controller asked before watching: it did not start an informer
	// that retries a forbidden list for ever, so the apiserver's audit log
	// holds no denied list/watch of ServiceAccounts by the controller.
	controllerUser := "system:serviceaccount:" + controlNS + ":keyless-controller"
	for _, ev := range e.cluster.AuditEvents(t, appNS) {
		if ev.User.Username == controllerUser && ev.ObjectRef.Resource == "serviceaccounts" &&
			(ev.Verb == "list" || ev.Verb == "watch") && ev.ResponseStatus != nil && ev.ResponseStatus.Code == 403 {
			t.Fatalf("the controller kept trying a forbidden %s of serviceaccounts: %s", ev.Verb, ev.RequestURI)
		}
	}
}

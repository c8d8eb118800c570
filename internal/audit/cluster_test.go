package audit

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/keyless-cd/keyless/internal/install"
	"github.com/keyless-cd/keyless/internal/localcluster"
	"github.com/keyless-cd/keyless/internal/localcluster/clustertest"
)

// TestScanClusterFindsSeededRisks: a token Secret, cluster-admin for a ci
// ServiceAccount, a wildcard ClusterRole bound to a user and an Argo CD-like
// controller are found; Kubernetes' own bindings are not findings; a
// namespaced reader sees what it cannot read.
func TestScanClusterFindsSeededRisks(t *testing.T) {
	ctx := t.Context()
	c := clustertest.Start(t, localcluster.Options{})
	cs := kubernetes.NewForConfigOrDie(c.Config)
	mustCreate := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, ns := range []string{"ci", "argocd", "myapp"} {
		_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		mustCreate(err)
	}
	_, err := cs.CoreV1().ServiceAccounts("ci").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "ci"}}, metav1.CreateOptions{})
	mustCreate(err)
	_, err = cs.CoreV1().Secrets("ci").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "ci-token", Annotations: map[string]string{corev1.ServiceAccountNameKey: "ci"}}, Type: corev1.SecretTypeServiceAccountToken}, metav1.CreateOptions{})
	mustCreate(err)
	bind := func(name, role string, subject rbacv1.Subject) {
		_, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role}, Subjects: []rbacv1.Subject{subject}}, metav1.CreateOptions{})
		mustCreate(err)
	}
	bind("ci-admin", "cluster-admin", rbacv1.Subject{Kind: "ServiceAccount", Name: "ci", Namespace: "ci"})
	_, err = cs.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "everything"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}}}}, metav1.CreateOptions{})
	mustCreate(err)
	bind("deploy-bot-everything", "everything", rbacv1.Subject{Kind: "User", APIGroup: rbacv1.GroupName, Name: "deploy-bot"})
	bind("argocd-application-controller", "everything", rbacv1.Subject{Kind: "ServiceAccount", Name: "argocd-application-controller", Namespace: "argocd"})

	_, err = cs.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "secret-reader"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list"}}}}, metav1.CreateOptions{})
	mustCreate(err)
	bind("ci-bot-secrets", "secret-reader", rbacv1.Subject{Kind: "User", APIGroup: rbacv1.GroupName, Name: "ci-bot"})
	// keyless's own namespaced install for myapp: reported, clean.
	if err := install.Apply(ctx, c.Config, install.Options{Namespaces: []string{"myapp"}}); err != nil {
		t.Fatal(err)
	}

	rep, err := ScanCluster(ctx, cs, ClusterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.InstallClusterWideChecked {
		t.Errorf("keyless's cluster-wide rights not confirmed absent: %+v", rep.Unreadable)
	}
	grants := map[string]InstallGrant{}
	for _, g := range rep.Install {
		grants[g.Namespace+" "+g.Subject] = g
	}
	ctl, okCtl := grants["myapp system:serviceaccount:keyless-system:keyless-controller"]
	dep, okDep := grants["myapp system:serviceaccount:myapp:keyless-deployer"]
	if !okCtl || !okDep || len(grants) != 3 { // and the controller's own Role in keyless-system
		t.Fatalf("install report: %+v", rep.Install)
	}
	if !strings.Contains(strings.Join(ctl.Rules, "|"), "impersonate serviceaccounts (only keyless-deployer)") ||
		!strings.Contains(strings.Join(dep.Rules, "|"), "deployments.apps") {
		t.Errorf("install rules:\ncontroller %v\ndeployer %v", ctl.Rules, dep.Rules)
	}
	var got []string
	for _, f := range rep.Findings {
		got = append(got, f.Rule+" "+f.File)
	}
	sort.Strings(got)
	want := "KL101 secret/ci/ci-token|KL102 clusterrolebinding/ci-admin|KL102 clusterrolebinding/deploy-bot-everything|KL103 clusterrolebinding/argocd-application-controller|KL105 clusterrolebinding/ci-bot-secrets"
	if strings.Join(got, "|") != want {
		t.Fatalf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.ReplaceAll(want, "|", "\n"))
	}
	for _, f := range rep.Findings {
		if f.Rule == "KL101" && !strings.Contains(f.What, "ClusterRole cluster-admin cluster-wide") {
			t.Errorf("token Secret without its ServiceAccount's rights: %s", f.What)
		}
	}

	// A managed namespace that stops enforcing Pod Security restricted is reported.
	if _, err := cs.CoreV1().Namespaces().Patch(ctx, "myapp", types.MergePatchType, []byte(`{"metadata":{"labels":{"pod-security.kubernetes.io/enforce":"privileged"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	rep, err = ScanCluster(ctx, cs, ClusterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kl106 := 0
	for _, f := range rep.Findings {
		if f.Rule == "KL106" && f.File == "namespace/myapp" && strings.Contains(f.What, `"privileged"`) {
			kl106++
		}
	}
	if kl106 != 1 {
		t.Errorf("a managed namespace enforcing privileged was not reported once: %+v", rep.Findings)
	}

	// A reader confined to one namespace gets what it can, and is told the rest.
	_, err = cs.RbacV1().Roles("myapp").Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "reader"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"list"}}}}, metav1.CreateOptions{})
	mustCreate(err)
	_, err = cs.RbacV1().RoleBindings("myapp").Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "reader"},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "reader"}, Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: rbacv1.GroupName, Name: "auditor"}}}, metav1.CreateOptions{})
	mustCreate(err)
	cfg := rest.CopyConfig(c.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "auditor"}
	// RBAC takes effect asynchronously; wait until the Role applies.
	for deadline := time.Now().Add(10 * time.Second); ; {
		rep, err = ScanCluster(t.Context(), kubernetes.NewForConfigOrDie(cfg), ClusterOptions{Namespace: "myapp"})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Unreadable) == 4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if fmt.Sprint(rep.Unreadable) != "[clusterroles (forbidden) clusterrolebindings (forbidden) rolebindings (forbidden) roles (forbidden)]" || len(rep.Findings) != 0 {
		t.Fatalf("namespaced reader: %+v", rep)
	}
}

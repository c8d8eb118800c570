package install

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/keyless-cd/keyless/internal/localcluster"
	"github.com/keyless-cd/keyless/internal/localcluster/clustertest"
)

// TestApplyIsNamespacedAndIdempotent: the install serves the Application API,
// creates the controller's and the deployer's identities, binds the
// controller in every managed namespace, adds no ClusterRole or
// ClusterRoleBinding, and can be applied again.
func TestApplyIsNamespacedAndIdempotent(t *testing.T) {
	ctx := t.Context()
	c := clustertest.Start(t, localcluster.Options{})
	cs := kubernetes.NewForConfigOrDie(c.Config)
	crbsBefore, err := cs.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	crsBefore, err := cs.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{ControllerNamespace: "cd", Namespaces: []string{"shop", "blog"}}
	for range 2 {
		if err := Apply(ctx, c.Config, opts); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cs.CoreV1().ServiceAccounts("cd").Get(ctx, "keyless-controller", metav1.GetOptions{}); err != nil {
		t.Errorf("controller ServiceAccount: %v", err)
	}
	if _, err := cs.AppsV1().Deployments("cd").Get(ctx, "keyless-controller", metav1.GetOptions{}); err == nil {
		t.Error("the Deployment was applied without WithDeployment")
	}
	for _, ns := range opts.Namespaces {
		if _, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, "keyless-deployer", metav1.GetOptions{}); err != nil {
			t.Errorf("%s: deployer ServiceAccount: %v", ns, err)
		}
		rb, err := cs.RbacV1().RoleBindings(ns).Get(ctx, "keyless-controller", metav1.GetOptions{})
		if err != nil || len(rb.Subjects) != 1 || rb.Subjects[0].Namespace != "cd" {
			t.Errorf("%s: controller RoleBinding %+v: %v", ns, rb, err)
		}
	}
	crbs, err := cs.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	crs, err := cs.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(crbs.Items) != len(crbsBefore.Items) || len(crs.Items) != len(crsBefore.Items) {
		t.Errorf("cluster-wide RBAC changed: %d→%d bindings, %d→%d roles", len(crbsBefore.Items), len(crbs.Items), len(crsBefore.Items), len(crs.Items))
	}
	for _, b := range crbs.Items {
		if strings.Contains(b.Name, "keyless") {
			t.Errorf("ClusterRoleBinding %s", b.Name)
		}
	}
}

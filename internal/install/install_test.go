package install

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"

	"github.com/keyless-cd/keyless/internal/localcluster"
	"github.com/keyless-cd/keyless/internal/localcluster/clustertest"
	"github.com/keyless-cd/keyless/internal/rbacgen"
	"github.com/keyless-cd/keyless/internal/render"
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

// TestForManifests: the deployer Role lists exactly the manifests' kinds; the
// controller keeps its own rules and watches exactly those kinds; a
// cluster-scoped object is refused, naming its file.
func TestForManifests(t *testing.T) {
	root := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(root, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n")
	write("job.yaml", "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: m, image: busybox}]\n")
	res, err := render.Render(t.Context(), render.Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := ForManifests(t.Context(), NamespaceOptions{Namespace: "team-a", Manifests: res})
	if err != nil {
		t.Fatal(err)
	}
	rules := map[string]string{}
	for _, o := range objs {
		if o.GetKind() != "Role" {
			continue
		}
		list, _, _ := unstructured.NestedSlice(o.Object, "rules")
		var got []string
		for _, r := range list {
			m := r.(map[string]any)
			got = append(got, fmt.Sprint(m["apiGroups"], m["resources"], m["verbs"]))
		}
		rules[o.GetName()] = strings.Join(got, "; ")
	}
	if want := "[] [configmaps] [get list create patch update delete]; [batch] [jobs] [get list create patch update delete]"; rules["keyless-deployer"] != want {
		t.Errorf("deployer rules:\n got %s\nwant %s", rules["keyless-deployer"], want)
	}
	c := rules["keyless-controller"]
	if !strings.Contains(c, "[impersonate]") || !strings.Contains(c, "[batch] [jobs] [list watch]") || strings.Contains(c, "deployments") {
		t.Errorf("controller rules: %s", c)
	}
	write("cr.yaml", "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: all\n")
	res, err = render.Render(t.Context(), render.Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ForManifests(t.Context(), NamespaceOptions{Namespace: "team-a", Manifests: res}); !errors.Is(err, rbacgen.ErrClusterScoped) || !strings.Contains(err.Error(), "cr.yaml") {
		t.Fatalf("a ClusterRole in the manifests: %v", err)
	}
}

package localcluster_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/keyless-cd/keyless/internal/localcluster"
	"github.com/keyless-cd/keyless/internal/localcluster/clustertest"
)

// TestCluster starts one cluster with an extra apiserver flag (an audit policy)
// and checks what users rely on: workloads run on the kwok node, RBAC is
// enforced for impersonated ServiceAccounts, the pass-through flags take effect,
// and Stop leaves no process behind.
func TestCluster(t *testing.T) {
	dir := t.TempDir()
	policy := filepath.Join(dir, "audit-policy.yaml")
	auditLog := filepath.Join(dir, "audit.log")
	if err := os.WriteFile(policy, []byte("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := clustertest.Start(t, localcluster.Options{
		StateDir: filepath.Join(dir, "state"),
		APIServerArgs: []string{
			"--audit-policy-file=" + policy,
			"--audit-log-path=" + auditLog,
		},
	})
	cs := kubernetes.NewForConfigOrDie(c.Config)

	t.Run("kubeconfig is usable and pins the CA", func(t *testing.T) {
		kc, err := clientcmd.LoadFromFile(c.KubeconfigPath)
		if err != nil {
			t.Fatal(err)
		}
		cluster := kc.Clusters[kc.Contexts[kc.CurrentContext].Cluster]
		if len(cluster.CertificateAuthorityData) == 0 || cluster.InsecureSkipTLSVerify {
			t.Fatalf("kubeconfig cluster must carry certificate-authority-data and verify TLS: %+v", cluster)
		}
		cfg, err := clientcmd.BuildConfigFromFlags("", c.KubeconfigPath)
		if err != nil {
			t.Fatal(err)
		}
		node, err := kubernetes.NewForConfigOrDie(cfg).CoreV1().Nodes().Get(t.Context(), localcluster.NodeName, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("getting the kwok node through the written kubeconfig: %v", err)
		}
		if !nodeReady(node) {
			t.Fatalf("node %s is not Ready: %+v", node.Name, node.Status.Conditions)
		}
		if fi, err := os.Stat(c.KubeconfigPath); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("kubeconfig mode = %v, want 0600 (err %v)", fi.Mode().Perm(), err)
		}
	})

	t.Run("a Deployment with 2 replicas becomes Available", func(t *testing.T) {
		ns := createNamespace(t, cs, "deploy")
		replicas := int32(2)
		labels := map[string]string{"app": "web"}
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
			Spec: appsv1.DeploymentSpec{
				Replicas: &replicas,
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "registry.example.com/web:1.0"}}},
				},
			},
		}
		if _, err := cs.AppsV1().Deployments(ns).Create(t.Context(), d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(90 * time.Second)
		for {
			got, err := cs.AppsV1().Deployments(ns).Get(t.Context(), "web", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got.Status.AvailableReplicas == 2 && deploymentAvailable(got) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("deployment not Available: replicas %d available %d conditions %+v",
					got.Status.Replicas, got.Status.AvailableReplicas, got.Status.Conditions)
			}
			time.Sleep(250 * time.Millisecond)
		}
		pods, err := cs.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			if p.Spec.NodeName != localcluster.NodeName || p.Status.Phase != corev1.PodRunning {
				t.Errorf("pod %s: node %q phase %s, want running on %s", p.Name, p.Spec.NodeName, p.Status.Phase, localcluster.NodeName)
			}
		}
	})

	t.Run("a ServiceAccount with a namespaced Role is confined to its namespace", func(t *testing.T) {
		own := createNamespace(t, cs, "own")
		other := createNamespace(t, cs, "other")
		ctx := t.Context()
		if _, err := cs.CoreV1().ServiceAccounts(own).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "deployer"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		role := &rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Name: "deployer"},
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "create"}}},
		}
		if _, err := cs.RbacV1().Roles(own).Create(ctx, role, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		rb := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "deployer"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "deployer", Namespace: own}},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "deployer"},
		}
		if _, err := cs.RbacV1().RoleBindings(own).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		cfg := rest.CopyConfig(c.Config)
		cfg.Impersonate = rest.ImpersonationConfig{
			UserName: "system:serviceaccount:" + own + ":deployer",
			Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + own, "system:authenticated"},
		}
		sa := kubernetes.NewForConfigOrDie(cfg)
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"}, Data: map[string]string{"k": "v"}}
		// The RBAC authorizer sees new Roles asynchronously: allow it a moment.
		for deadline := time.Now().Add(10 * time.Second); ; {
			_, err := sa.CoreV1().ConfigMaps(own).Create(ctx, cm, metav1.CreateOptions{})
			if err == nil {
				break
			}
			if !apierrors.IsForbidden(err) || time.Now().After(deadline) {
				t.Fatalf("deployer creating a ConfigMap in its own namespace: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		_, err := sa.CoreV1().ConfigMaps(other).Create(ctx, cm, metav1.CreateOptions{})
		if !apierrors.IsForbidden(err) {
			t.Fatalf("deployer creating a ConfigMap in another namespace: got %v, want Forbidden", err)
		}
		_, err = sa.CoreV1().Secrets(own).List(ctx, metav1.ListOptions{})
		if !apierrors.IsForbidden(err) {
			t.Fatalf("deployer listing Secrets outside its Role: got %v, want Forbidden", err)
		}
	})

	t.Run("extra apiserver flags take effect", func(t *testing.T) {
		ns := createNamespace(t, cs, "audited")
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "audited"}}
		if _, err := cs.CoreV1().ConfigMaps(ns).Create(t.Context(), cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			b, _ := os.ReadFile(auditLog)
			if strings.Contains(string(b), `"namespace":"`+ns+`"`) {
				if !strings.Contains(string(b), "keyless-local-admin") {
					t.Fatal("audit log does not name the admin user")
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("audit log %s never recorded the creation of namespace %s", auditLog, ns)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})

	t.Run("Stop leaves no process behind", func(t *testing.T) {
		pids := c.PIDs()
		for _, name := range localcluster.RequiredBinaries {
			if pids[name] == 0 {
				t.Fatalf("no pid recorded for %s: %v", name, pids)
			}
		}
		c.Stop()
		for name, pid := range pids {
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("%s (pid %d) still exists after Stop: %v", name, pid, err)
			}
			if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("process group of %s (pgid %d) still has members after Stop: %v", name, pid, err)
			}
		}
		for _, p := range c.LogPaths() {
			if _, err := os.Stat(p); err != nil {
				t.Errorf("log %s is gone after Stop: %v", p, err)
			}
		}
	})
}

func TestStartReportsMissingBinaries(t *testing.T) {
	empty := t.TempDir()
	_, err := localcluster.Start(t.Context(), localcluster.Options{Assets: empty, StateDir: t.TempDir()})
	if !errors.Is(err, localcluster.ErrMissingBinary) {
		t.Fatalf("got %v, want ErrMissingBinary", err)
	}
	for _, want := range append([]string{"make k8s-bins", empty}, localcluster.RequiredBinaries...) {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func createNamespace(t *testing.T, cs kubernetes.Interface, prefix string) string {
	t.Helper()
	ns, err := cs.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func deploymentAvailable(d *appsv1.Deployment) bool {
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

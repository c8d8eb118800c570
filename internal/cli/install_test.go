package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/keyless-cd/keyless/internal/install"
	"github.com/keyless-cd/keyless/internal/localcluster"
	"github.com/keyless-cd/keyless/internal/localcluster/clustertest"
)

// runIn runs a keyless command line with stdin.
func runIn(ctx context.Context, t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Run(ctx, args, IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut})
	return code, out.String(), errOut.String()
}

// TestInstallCommand: keyless install applies the whole install with the
// admin's kubeconfig and waits for the controller (kwok runs its pods);
// re-running changes nothing and keeps the webhook secret; --export prints
// the same install with no Secret in it; uninstall removes it, and the CRD
// only when confirmed.
func TestInstallCommand(t *testing.T) {
	ctx := t.Context()
	c := clustertest.Start(t, localcluster.Options{})
	cs := kubernetes.NewForConfigOrDie(c.Config)
	kc := "--kubeconfig=" + c.KubeconfigPath
	image := "registry.example.com/keyless@sha256:" + strings.Repeat("ab", 32)

	code, out, errOut := run(ctx, t, "install", "--namespaces", "team-a,team-b", "--image", image, kc, "--timeout", "2m")
	if code != 0 || !strings.Contains(out, "installed and ready") {
		t.Fatalf("install: exit %d\n%s%s", code, out, errOut)
	}
	d, err := cs.AppsV1().Deployments(install.DefaultControllerNamespace).Get(ctx, install.DeploymentName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctr := d.Spec.Template.Spec.Containers[0]
	if ctr.Image != image || !slices.Contains(ctr.Args, "--namespaces=team-a,team-b") || !slices.Contains(ctr.Args, "--leader-elect") || *d.Spec.Replicas != 2 || d.Status.AvailableReplicas != 2 {
		t.Fatalf("deployment: image %s args %v replicas %d available %d", ctr.Image, ctr.Args, *d.Spec.Replicas, d.Status.AvailableReplicas)
	}
	if ctr.ReadinessProbe == nil || ctr.ReadinessProbe.HTTPGet.Path != "/readyz" || ctr.LivenessProbe == nil || ctr.Resources.Requests.Memory().IsZero() {
		t.Fatalf("probes/resources: %+v %+v %+v", ctr.ReadinessProbe, ctr.LivenessProbe, ctr.Resources)
	}
	if _, err := cs.CoreV1().Services(install.DefaultControllerNamespace).Get(ctx, install.DeploymentName, metav1.GetOptions{}); err != nil {
		t.Fatalf("service: %v", err)
	}
	np, err := cs.NetworkingV1().NetworkPolicies(install.DefaultControllerNamespace).Get(ctx, install.DeploymentName, metav1.GetOptions{})
	if err != nil || len(np.Spec.Ingress) != 1 || len(np.Spec.Ingress[0].Ports) != 3 {
		t.Fatalf("network policy: %+v, %v", np, err)
	}
	secret := func() string {
		s, err := cs.CoreV1().Secrets(install.DefaultControllerNamespace).Get(ctx, install.WebhookSecretName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return string(s.Data[install.WebhookSecretKey])
	}
	webhook := secret()
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(webhook) || strings.Contains(out+errOut, webhook) {
		t.Fatalf("webhook secret %q: not random, or printed", webhook)
	}
	for _, ns := range []string{"team-a", "team-b"} {
		n, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil || n.Labels[install.PodSecurityEnforceLabel] != install.PodSecurityRestricted {
			t.Fatalf("namespace %s: %v %v", ns, n.Labels, err)
		}
		if _, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, "keyless-deployer", metav1.GetOptions{}); err != nil {
			t.Fatalf("%s: deployer: %v", ns, err)
		}
	}

	t.Log("re-running changes nothing and keeps the webhook secret")
	gen := d.Generation
	if code, out, errOut := run(ctx, t, "install", "--namespaces", "team-a,team-b", "--image", image, kc); code != 0 {
		t.Fatalf("re-install: exit %d\n%s%s", code, out, errOut)
	}
	d, _ = cs.AppsV1().Deployments(install.DefaultControllerNamespace).Get(ctx, install.DeploymentName, metav1.GetOptions{})
	if d.Generation != gen || secret() != webhook {
		t.Fatalf("re-install changed the Deployment (generation %d → %d) or the webhook secret", gen, d.Generation)
	}

	t.Log("a shrinking --namespaces is refused, naming what it drops; --prune-namespaces drops it")
	code, out, errOut = run(ctx, t, "install", "--namespaces", "team-b", "--image", image, kc)
	if code == 0 || !strings.Contains(errOut, "would drop team-a") || !strings.Contains(errOut, "--prune-namespaces") {
		t.Fatalf("shrinking install: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = run(ctx, t, "install", "--namespaces", "team-b", "--image", image, kc, "--prune-namespaces")
	if code != 0 || !strings.Contains(errOut, "pruned Role/team-a/keyless-controller") {
		t.Fatalf("install --prune-namespaces: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := cs.RbacV1().RoleBindings("team-a").Get(ctx, "keyless-controller", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("team-a's RoleBinding is left: %v", err)
	}
	if code, out, errOut := run(ctx, t, "install", "--namespaces", "team-a,team-b", "--image", image, kc); code != 0 {
		t.Fatalf("adding team-a back: exit %d\n%s%s", code, out, errOut)
	}

	t.Log("--export prints the install, no Secret, and touches nothing")
	code, out, errOut = run(ctx, t, "install", "--namespaces", "team-a", "--image", image, "--export")
	if code != 0 {
		t.Fatalf("export: exit %d\n%s", code, errOut)
	}
	kinds := map[string]int{}
	for _, doc := range strings.Split(out, "\n---\n") {
		var o struct {
			Kind string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatalf("export is not YAML: %v\n%s", err, doc)
		}
		kinds[o.Kind]++
	}
	if kinds["CustomResourceDefinition"] != 1 || kinds["Deployment"] != 1 || kinds["Secret"] != 0 || kinds["ClusterRole"] != 0 || kinds["ClusterRoleBinding"] != 0 || !strings.Contains(out, image) {
		t.Fatalf("export kinds %v", kinds)
	}
	if kinds["ValidatingAdmissionPolicy"] != 0 {
		t.Fatal("the export holds the credential-mount policy without --credential-mount-policy")
	}
	code, out, errOut = run(ctx, t, "install", "--namespaces", "team-a", "--image", image, "--export", "--credential-mount-policy")
	if code != 0 || !strings.Contains(out, "kind: ValidatingAdmissionPolicy\n") || !strings.Contains(out, "kind: ValidatingAdmissionPolicyBinding\n") {
		t.Fatalf("export --credential-mount-policy: exit %d, no policy and binding\n%s", code, errOut)
	}
	code, out, errOut = run(ctx, t, "install", "--namespaces", "team-a", "--image", image, "--export", "--ledger", "--ledger-size", "2Gi")
	if code != 0 || !strings.Contains(out, "kind: PersistentVolumeClaim\n") || !strings.Contains(out, "storage: 2Gi") || strings.Contains(out, "kind: Secret\n") ||
		!strings.Contains(out, "replicas: 1\n") || !strings.Contains(out, "--ledger-key-file=") {
		t.Fatalf("export --ledger: exit %d, want the claim, one replica, the flags and no Secret\n%s%s", code, out, errOut)
	}
	if code, _, errOut := run(ctx, t, "install", "--namespaces", "team-a", "--image", image, "--export", "--ledger", "--replicas", "2"); code == 0 || !strings.Contains(errOut, "one writer") {
		t.Fatalf("--ledger --replicas 2: exit %d %s", code, errOut)
	}

	t.Log("uninstall removes it; the CRD only when confirmed")
	code, out, errOut = run(ctx, t, "uninstall", "--namespaces", "team-a,team-b", kc)
	if code != 0 || !strings.Contains(out, "deleted Deployment/keyless-system/keyless-controller") {
		t.Fatalf("uninstall: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := cs.RbacV1().Roles("team-a").Get(ctx, "keyless-controller", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("team-a's Role is left: %v", err)
	}
	dyn := dynamic.NewForConfigOrDie(c.Config)
	crd := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	if _, err := dyn.Resource(crd).Get(ctx, "applications.keyless.dev", metav1.GetOptions{}); err != nil {
		t.Fatalf("uninstall without --delete-crd deleted the CRD: %v", err)
	}
	if code, _, errOut := runIn(ctx, t, "no\n", "uninstall", "--delete-crd", kc); code == 0 || !strings.Contains(errOut, "not confirmed") {
		t.Fatalf("unconfirmed CRD deletion: exit %d %s", code, errOut)
	}
	if code, out, errOut := runIn(ctx, t, "yes\n", "uninstall", "--delete-crd", kc); code != 0 || !strings.Contains(out, "CustomResourceDefinition") {
		t.Fatalf("confirmed CRD deletion: exit %d\n%s%s", code, out, errOut)
	}
}

// TestInstallNamespaceDryRun: keyless install namespace --dry-run on a
// namespace running a pod restricted refuses shows the label change, the
// API server's Pod Security warning naming the pod, and each object, and
// writes nothing; --pod-security baseline applies without the warning; a
// level that is not one is refused.
func TestInstallNamespaceDryRun(t *testing.T) {
	ctx := t.Context()
	c := clustertest.Start(t, localcluster.Options{})
	cs := kubernetes.NewForConfigOrDie(c.Config)
	kc := "--kubeconfig=" + c.KubeconfigPath
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "legacy"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "old-web", Namespace: "legacy"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx"}}}}
	if _, err := cs.CoreV1().Pods("legacy").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cm.yaml"), []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(ctx, t, "install", "namespace", "legacy", "--manifests", dir, kc, "--dry-run")
	if code != 0 {
		t.Fatalf("--dry-run: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"label pod-security.kubernetes.io/enforce: (none) → restricted (dry run)", "Role/keyless-deployer created (dry run)", "nothing was written"} {
		if !strings.Contains(out, want) {
			t.Errorf("--dry-run output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, `warning: Pod Security "restricted" would refuse pods running in namespace legacy`) || !strings.Contains(errOut, "old-web") {
		t.Errorf("no Pod Security warning naming old-web:\n%s", errOut)
	}
	if ns, _ := cs.CoreV1().Namespaces().Get(ctx, "legacy", metav1.GetOptions{}); ns.Labels[install.PodSecurityEnforceLabel] != "" {
		t.Fatalf("--dry-run labelled the namespace: %v", ns.Labels)
	}
	if _, err := cs.RbacV1().Roles("legacy").Get(ctx, "keyless-deployer", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("--dry-run created the Role: %v", err)
	}
	code, out, errOut = run(ctx, t, "install", "namespace", "legacy", "--manifests", dir, kc, "--pod-security", "baseline")
	if code != 0 || strings.Contains(errOut, "warning") || !strings.Contains(out, "namespace legacy installed") {
		t.Fatalf("--pod-security baseline: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := run(ctx, t, "install", "namespace", "legacy", "--manifests", dir, kc, "--pod-security", "strict"); code == 0 || !strings.Contains(errOut, "restricted, baseline, privileged") {
		t.Fatalf("--pod-security strict: exit %d %s", code, errOut)
	}
}

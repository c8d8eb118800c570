package install

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/localcluster"
	"github.com/keyless-cd/keyless/internal/localcluster/clustertest"
)

// TestCredentialMountPolicyIsOptional: without CredentialMountPolicy the
// install (and its export) holds no admission policy; with it, exactly the
// policy and its binding, keyed on kv1.CredentialLabel.
func TestCredentialMountPolicyIsOptional(t *testing.T) {
	kinds := func(objs []*unstructured.Unstructured) (out []string) {
		for _, o := range objs {
			if _, ok := policyResources[o.GetKind()]; ok {
				out = append(out, o.GetKind()+"/"+o.GetName())
			}
		}
		return out
	}
	ns := []string{"shop"}
	m, err := Render(t.Context(), Options{Namespaces: ns, WithDeployment: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := kinds(m.All(ns)); len(got) != 0 || len(m.Policies) != 0 {
		t.Errorf("without CredentialMountPolicy the install holds %v", got)
	}
	m, err = Render(t.Context(), Options{Namespaces: ns, WithDeployment: true, CredentialMountPolicy: true})
	if err != nil {
		t.Fatal(err)
	}
	want := "ValidatingAdmissionPolicy/" + CredentialMountPolicyName + " ValidatingAdmissionPolicyBinding/" + CredentialMountPolicyName
	if got := strings.Join(kinds(m.All(ns)), " "); got != want {
		t.Errorf("with CredentialMountPolicy: %s, want %s", got, want)
	}
	for _, o := range m.Policies {
		if o.GetKind() != "ValidatingAdmissionPolicyBinding" {
			continue
		}
		exprs, _, _ := unstructured.NestedSlice(o.Object, "spec", "paramRef", "selector", "matchExpressions")
		if fmt.Sprint(exprs) != fmt.Sprintf("[map[key:%s operator:Exists]]", kv1.CredentialLabel) {
			t.Errorf("the binding's params are %v, not the Secrets labelled %s", exprs, kv1.CredentialLabel)
		}
	}
}

// restrictedPod is a pod spec Pod Security "restricted" admits, with extra
// (indented YAML) merged in; %[1]s in extra is the Secret's name.
const restrictedPod = `securityContext:
  runAsNonRoot: true
  runAsUser: 1000
  seccompProfile: {type: RuntimeDefault}
containers:
- name: app
  image: registry.example/app:1
  securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
`

// references are the ways a pod spec can read a Secret, as YAML added to
// restrictedPod (containers: appended to the first container's fields).
var references = []struct {
	name, spec, refusal string
}{
	{"volume", `volumes: [{name: s, secret: {secretName: %[1]s}}]`, "secret volume"},
	{"projected", `volumes: [{name: s, projected: {sources: [{configMap: {name: other}}, {secret: {name: %[1]s}}]}}]`, "projected volume"},
	{"csi", `volumes: [{name: s, csi: {driver: secrets-store.csi.k8s.io, nodePublishSecretRef: {name: %[1]s}}}]`, "CSI driver"},
	{"env", `initContainers: [{name: init, image: registry.example/init:1, securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}, env: [{name: PLAIN, value: x}, {name: KEY, valueFrom: {secretKeyRef: {name: %[1]s, key: identity}}}]}]`, "env secretKeyRef"},
	{"envfrom", `initContainers: [{name: init, image: registry.example/init:1, securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}, envFrom: [{configMapRef: {name: other}}, {secretRef: {name: %[1]s}}]}]`, "envFrom secretRef"},
	{"pull", `imagePullSecrets: [{name: %[1]s}]`, "imagePullSecrets"},
}

// workload returns kind named name whose pod spec is restrictedPod plus extra.
func workload(t *testing.T, kind, name, extra string) *unstructured.Unstructured {
	t.Helper()
	spec := map[string]any{}
	if err := yaml.Unmarshal([]byte(restrictedPod+extra), &spec); err != nil {
		t.Fatal(err)
	}
	template := map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": name}}, "spec": spec}
	o := &unstructured.Unstructured{Object: map[string]any{}}
	o.SetName(name)
	switch kind {
	case "Pod":
		o.SetAPIVersion("v1")
		o.Object["spec"] = spec
	case "Deployment":
		o.SetAPIVersion("apps/v1")
		o.Object["spec"] = map[string]any{"selector": map[string]any{"matchLabels": map[string]any{"app": name}}, "template": template}
	case "CronJob":
		o.SetAPIVersion("batch/v1")
		spec["restartPolicy"] = "Never"
		o.Object["spec"] = map[string]any{"schedule": "@hourly", "jobTemplate": map[string]any{"spec": map[string]any{"template": template}}}
	default:
		t.Fatalf("no template for %s", kind)
	}
	o.SetKind(kind)
	return o
}

var workloadResources = map[string]schema.GroupVersionResource{
	"Pod":        {Version: "v1", Resource: "pods"},
	"Deployment": {Group: "apps", Version: "v1", Resource: "deployments"},
	"CronJob":    {Group: "batch", Version: "v1", Resource: "cronjobs"},
}

// TestCredentialSecretsCannotBeMounted: with the credential-mount policy,
// whoever may create workloads in a namespace (here its keyless-deployer,
// as every sync) cannot have a Pod, Deployment or CronJob read a Secret
// labelled keyless.dev/credential — as a volume, projected, through a CSI
// driver, in env or envFrom, as a pull secret, or from an ephemeral
// container — and the refusal is Invalid and names the Secret; the same
// workloads reading an unlabelled Secret are admitted, and a Secret of the
// same name in a namespace where it is not labelled is not protected.
func TestCredentialSecretsCannotBeMounted(t *testing.T) {
	ctx := t.Context()
	c := clustertest.Start(t, localcluster.Options{})
	const ns, other = "shop", "blog"
	if err := Apply(ctx, c.Config, Options{ControllerNamespace: "cd", Namespaces: []string{ns, other}, CredentialMountPolicy: true}); err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(c.Config)
	for _, s := range []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Name: "team-git", Namespace: ns, Labels: map[string]string{kv1.CredentialLabel: kv1.CredentialGit}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "app-config", Namespace: ns}},
		{ObjectMeta: metav1.ObjectMeta{Name: "team-git", Namespace: other}},
	} {
		s.StringData = map[string]string{"identity": "secret value"}
		if _, err := cs.CoreV1().Secrets(s.Namespace).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The deployer may create the workloads and ephemeral containers (as a
	// namespace admin grants it for its manifests), never read a Secret.
	for _, n := range []string{ns, other} {
		grantDeployer(t, cs, n)
	}
	deployer := func(n string) dynamic.Interface {
		cfg := rest.CopyConfig(c.Config)
		cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + n + ":" + kv1.DefaultServiceAccountName}
		return dynamic.NewForConfigOrDie(cfg)
	}
	dyn := deployer(ns)
	create := func(dyn dynamic.Interface, n string, o *unstructured.Unstructured) error {
		_, err := dyn.Resource(workloadResources[o.GetKind()]).Namespace(n).Create(ctx, o, metav1.CreateOptions{})
		return err
	}
	// The API server loads a new policy and its params, and the authorizer
	// the deployer's new Role, asynchronously.
	first := workload(t, "Deployment", "wait", fmt.Sprintf(references[0].spec, "team-git"))
	var last error
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, last = dyn.Resource(workloadResources["Deployment"]).Namespace(ns).Create(ctx, first, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return apierrors.IsInvalid(last), nil
	}); err != nil {
		t.Fatalf("a Deployment mounting team-git is not refused after 30s (last: %v): %v", last, err)
	}

	for _, kind := range []string{"Deployment", "CronJob", "Pod"} {
		for _, ref := range references {
			name := strings.ToLower(kind) + "-" + ref.name
			err := create(dyn, ns, workload(t, kind, name+"-credential", fmt.Sprintf(ref.spec, "team-git")))
			checkRefused(t, name, err, ref.refusal)
			if err := create(dyn, ns, workload(t, kind, name+"-config", fmt.Sprintf(ref.spec, "app-config"))); err != nil {
				t.Errorf("%s reading the unlabelled app-config: %v", name, err)
			}
		}
	}
	if err := create(deployer(other), other, workload(t, "Deployment", "elsewhere", fmt.Sprintf(references[0].spec, "team-git"))); err != nil {
		t.Errorf("%s/team-git is not labelled, yet mounting it is refused: %v", other, err)
	}

	// An ephemeral container is added to a running pod through its own
	// subresource.
	pods := deployer(ns).Resource(workloadResources["Pod"]).Namespace(ns)
	debug := func(secret string) error {
		p, err := pods.Get(ctx, "pod-volume-config", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ec := map[string]any{"name": "debug-" + secret, "image": "registry.example/debug:1",
			"securityContext": map[string]any{"allowPrivilegeEscalation": false, "capabilities": map[string]any{"drop": []any{"ALL"}}},
			"envFrom":         []any{map[string]any{"secretRef": map[string]any{"name": secret}}}}
		_ = unstructured.SetNestedSlice(p.Object, []any{ec}, "spec", "ephemeralContainers")
		_, err = pods.Update(ctx, p, metav1.UpdateOptions{}, "ephemeralcontainers")
		return err
	}
	checkRefused(t, "ephemeral container", debug("team-git"), "envFrom secretRef")
	if err := debug("app-config"); err != nil {
		t.Errorf("ephemeral container reading app-config: %v", err)
	}
}

// checkRefused fails t unless err is the policy's refusal of the labelled
// team-git Secret for how.
func checkRefused(t *testing.T, name string, err error, how string) {
	t.Helper()
	var status apierrors.APIStatus
	switch {
	case err == nil:
		t.Errorf("%s reading the labelled team-git was admitted", name)
	case !apierrors.IsInvalid(err) || !errors.As(err, &status):
		t.Errorf("%s: refused, but not as Invalid by the policy: %v", name, err)
	default:
		msg := status.Status().Message
		for _, want := range []string{CredentialMountPolicyName, "Secret team-git", kv1.CredentialLabel + "=git", how} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: the refusal does not say %q: %s", name, want, msg)
			}
		}
	}
}

// grantDeployer lets namespace n's keyless-deployer create Pods (and their
// ephemeral containers), Deployments and CronJobs.
func grantDeployer(t *testing.T, cs kubernetes.Interface, n string) {
	t.Helper()
	ctx := t.Context()
	verbs := []string{"get", "create", "update", "patch"}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "workloads", Namespace: n}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods", "pods/ephemeralcontainers"}, Verbs: verbs},
		{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: verbs},
		{APIGroups: []string{"batch"}, Resources: []string{"cronjobs"}, Verbs: verbs},
	}}
	if _, err := cs.RbacV1().Roles(n).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "workloads", Namespace: n},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "workloads"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: kv1.DefaultServiceAccountName, Namespace: n}}}
	if _, err := cs.RbacV1().RoleBindings(n).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

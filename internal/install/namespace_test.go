package install

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/keyless-cd/keyless/internal/engine"
	"github.com/keyless-cd/keyless/internal/localcluster"
	"github.com/keyless-cd/keyless/internal/localcluster/clustertest"
)

// TestApplyNamespaceDryRunAndPodSecurityWarnings: on an existing namespace
// running a pod that restricted refuses, a dry run reports the labels that
// would change, the API server's warning naming the pod and each object as
// created, and writes nothing; a level the pod meets applies without a
// warning; a dry run for a missing namespace creates nothing.
func TestApplyNamespaceDryRunAndPodSecurityWarnings(t *testing.T) {
	ctx := t.Context()
	c := clustertest.Start(t, localcluster.Options{})
	cs := kubernetes.NewForConfigOrDie(c.Config)
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "legacy"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Baseline allows it; restricted does not (root, capabilities, no seccomp).
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "old-web", Namespace: "legacy"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx"}}},
	}
	if _, err := cs.CoreV1().Pods("legacy").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	m, err := Render(ctx, Options{Namespaces: []string{"legacy", "new-team"}})
	if err != nil {
		t.Fatal(err)
	}

	res, err := ApplyNamespace(ctx, c.Config, NamespaceApply{Namespace: "legacy", Objects: m.PerNamespace["legacy"], DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Created || len(res.Labels) != 3 || !slices.Contains(res.Labels, PodSecurityEnforceLabel+": (none) → restricted") {
		t.Errorf("dry run: created %v, labels %q", res.Created, res.Labels)
	}
	t.Logf("Pod Security warnings: %q", res.PodSecurityWarnings)
	if w := strings.Join(res.PodSecurityWarnings, "\n"); !strings.Contains(w, "old-web") || !strings.Contains(w, "restricted") {
		t.Errorf("dry run: Pod Security warnings %q, want old-web named", res.PodSecurityWarnings)
	}
	if res.Objects == nil || res.Objects.Count(engine.ActionCreated) != len(m.PerNamespace["legacy"]) {
		t.Errorf("dry run: objects %+v, want every one created", res.Objects)
	}
	ns, err := cs.CoreV1().Namespaces().Get(ctx, "legacy", metav1.GetOptions{})
	if err != nil || ns.Labels[PodSecurityEnforceLabel] != "" {
		t.Errorf("the dry run labelled the namespace: %v %v", ns.Labels, err)
	}
	if _, err := cs.RbacV1().Roles("legacy").Get(ctx, "keyless-deployer", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the dry run created the deployer's Role: %v", err)
	}

	t.Log("baseline: the pod complies, applied without a warning")
	res, err = ApplyNamespace(ctx, c.Config, NamespaceApply{Namespace: "legacy", PodSecurity: PodSecurityBaseline, Objects: m.PerNamespace["legacy"]})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.PodSecurityWarnings) != 0 {
		t.Errorf("baseline: warnings %q", res.PodSecurityWarnings)
	}
	ns, _ = cs.CoreV1().Namespaces().Get(ctx, "legacy", metav1.GetOptions{})
	if ns.Labels[PodSecurityEnforceLabel] != PodSecurityBaseline {
		t.Errorf("labels %v", ns.Labels)
	}
	if _, err := cs.RbacV1().Roles("legacy").Get(ctx, "keyless-deployer", metav1.GetOptions{}); err != nil {
		t.Errorf("the deployer's Role: %v", err)
	}

	t.Log("a dry run for a missing namespace creates nothing")
	res, err = ApplyNamespace(ctx, c.Config, NamespaceApply{Namespace: "new-team", Objects: m.PerNamespace["new-team"], DryRun: true})
	if err != nil || !res.Created || res.Objects.Count(engine.ActionCreated) != len(m.PerNamespace["new-team"]) {
		t.Fatalf("dry run of a new namespace: %+v, %v", res, err)
	}
	if _, err := cs.CoreV1().Namespaces().Get(ctx, "new-team", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the dry run created the namespace: %v", err)
	}
	if _, err := ApplyNamespace(ctx, c.Config, NamespaceApply{Namespace: "legacy", PodSecurity: "none"}); err == nil {
		t.Error("Pod Security level none was accepted")
	}
}

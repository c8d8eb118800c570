package controller_test

import (
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/keyless-cd/keyless/internal/engine"
)

// TestManualEditsAreReverted: with an hour's interval, a manual edit of a
// managed field is reverted, and a deleted managed object recreated, by the
// watch on what the Application deployed.
func TestManualEditsAreReverted(t *testing.T) {
	e, _ := seedApp(t, time.Hour)
	ctx := t.Context()
	d, err := e.cs.AppsV1().Deployments(appNS).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	five := int32(5)
	d.Spec.Replicas = &five
	start := time.Now()
	if _, err := e.cs.AppsV1().Deployments(appNS).Update(ctx, d, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "replicas reverted to 1", func() (bool, string) {
		d, err := e.cs.AppsV1().Deployments(appNS).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return *d.Spec.Replicas == 1, fmt.Sprint(*d.Spec.Replicas)
	})
	t.Logf("drift → reverted in %s", time.Since(start).Round(time.Millisecond))

	t.Log("a deleted managed object is recreated")
	if err := e.cs.CoreV1().ConfigMaps(appNS).Delete(ctx, "settings", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "ConfigMap recreated", func() (bool, string) {
		_, err := e.cs.CoreV1().ConfigMaps(appNS).Get(ctx, "settings", metav1.GetOptions{})
		return err == nil, errString(err)
	})
}

// TestRolloutIsNotDrift: a rollout keyless made is not drift — neither
// kube-controller-manager's status update in the same second as keyless's
// apply nor the deployment.kubernetes.io/revision annotation it sets cost a
// re-apply — while a label keyless set, changed by hand, is reverted at once.
func TestRolloutIsNotDrift(t *testing.T) {
	e, _ := seedApp(t, time.Hour)
	ctx := t.Context()
	drift := counterSum(t, "keyless_drift_events_total")
	deployment := func() *appsv1.Deployment {
		t.Helper()
		d, err := e.cs.AppsV1().Deployments(appNS).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}

	t.Log("a rollout: kube-controller-manager bumps the revision annotation right after keyless's write")
	e.push(manifests("registry.example.com/web:2.0", "hello"), nil, "web 2.0")
	requestSync(t, e, "rollout")
	waitFor(t, 30*time.Second, "revision 2 rolled out", func() (bool, string) {
		d := deployment()
		rev := d.Annotations["deployment.kubernetes.io/revision"]
		return d.Spec.Template.Spec.Containers[0].Image == "registry.example.com/web:2.0" && rev == "2", rev
	})

	time.Sleep(2 * time.Second) // what a watch event would have set off by now
	if n := counterSum(t, "keyless_drift_events_total") - drift; n != 0 {
		t.Fatalf("%.0f drift event(s) for a rollout keyless made", n)
	}

	patch := func(manager, patch string) {
		t.Helper()
		if _, err := e.cs.AppsV1().Deployments(appNS).Patch(ctx, "web", types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: manager}); err != nil {
			t.Fatal(err)
		}
	}
	t.Log("a label keyless set, changed by hand, is drift and reverted")
	patch("kubectl-label", `{"metadata":{"labels":{"`+engine.ManagedByLabel+`":"someone-else"}}}`)
	waitFor(t, 20*time.Second, "managed-by label reverted", func() (bool, string) {
		v := deployment().Labels[engine.ManagedByLabel]
		return v == engine.ManagedByValue, v
	})
	if n := counterSum(t, "keyless_drift_events_total") - drift; n < 1 {
		t.Fatal("the reverted label was not counted as drift")
	}
}

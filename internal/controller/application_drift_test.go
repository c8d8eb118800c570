package controller_test

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

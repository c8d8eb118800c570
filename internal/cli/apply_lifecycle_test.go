package cli

import (
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/keyless-cd/keyless/internal/localcluster"
	"github.com/keyless-cd/keyless/internal/localcluster/clustertest"
)

// TestApplyRunsTheMigrationHook is the migration chart through
// `keyless apply`: the pre-upgrade Job runs again on each --helm-set
// image.tag, completes before the Deployment changes, and a failing
// migration exits non-zero naming the hook with the old image left running.
// `keyless render` and `keyless diff` show each object's phase and wave.
func TestApplyRunsTheMigrationHook(t *testing.T) {
	c := clustertest.Start(t, localcluster.Options{})
	ctx := t.Context()
	cs := kubernetes.NewForConfigOrDie(c.Config)
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kc := "--kubeconfig=" + c.KubeconfigPath
	// The migration chart the engine and controller tests share.
	chart, err := filepath.Abs("../lifecycle/testdata/shop")
	if err != nil {
		t.Fatal(err)
	}
	image := func() string {
		d, err := cs.AppsV1().Deployments("shop").Get(ctx, "shop", metav1.GetOptions{})
		if err != nil {
			return ""
		}
		return d.Spec.Template.Spec.Containers[0].Image
	}

	code, out, errOut := run(ctx, t, "render", chart, "-n", "shop")
	if code != 0 || !strings.Contains(out, "# Sync: PreSync hook, wave -1") {
		t.Fatalf("render: exit %d, want the hook's phase and wave\n%s%s", code, out, errOut)
	}
	code, _, errOut = run(ctx, t, "diff", chart, "-n", "shop", kc)
	if code != 1 || !strings.Contains(errOut, "Job/shop-migrate hook [PreSync, wave -1]") || !strings.Contains(errOut, "Deployment/shop created [Sync, wave 0]") {
		t.Fatalf("diff: exit %d\n%s", code, errOut)
	}

	var uid string
	for _, tag := range []string{"1.0", "1.1", "1.2"} {
		code, out, errOut = run(ctx, t, "apply", chart, "-n", "shop", "--prune", "--helm-set", "image.tag="+tag, kc)
		if code != 0 || !strings.Contains(out, "PreSync hook Job/shop-migrate [wave -1] Succeeded") || !strings.Contains(errOut, "PreSync wave -1: waiting for Job/shop-migrate") {
			t.Fatalf("apply %s: exit %d\nstdout:\n%s\nstderr:\n%s", tag, code, out, errOut)
		}
		job, err := cs.BatchV1().Jobs("shop").Get(ctx, "shop-migrate", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if string(job.UID) == uid || job.Status.CompletionTime == nil || job.Spec.Template.Spec.Containers[0].Image != "registry.example.com/shop:"+tag {
			t.Fatalf("apply %s: the migration did not run again to completion with the new image", tag)
		}
		uid = string(job.UID)
		if got := image(); got != "registry.example.com/shop:"+tag {
			t.Fatalf("apply %s: Deployment runs %s", tag, got)
		}
	}

	code, out, errOut = run(ctx, t, "apply", chart, "-n", "shop", "--helm-set", "image.tag=1.3", "--helm-set", "migrate.fail=true", kc)
	if code == 0 || !strings.Contains(errOut, "PreSync hook Job/shop-migrate failed") {
		t.Fatalf("failing migration: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if got := image(); got != "registry.example.com/shop:1.2" {
		t.Errorf("after the failed migration the Deployment runs %s, want 1.2", got)
	}
}

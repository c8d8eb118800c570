package controller_test

import (
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

// TestBadCommitsKeepTheLastGoodState: a render error, an empty render and
// objects outside the namespace each stall the Application with a message
// naming the file or object, and keep what was last applied running; the
// next good commit clears the stall.
func TestBadCommitsKeepTheLastGoodState(t *testing.T) {
	e, first := seedApp(t, time.Hour)
	ctx := t.Context()

	t.Log("a render error stalls with file:line")
	bad := e.push(map[string]string{"deploy/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  labels: [oops\n"}, nil, "broken yaml")
	e.gitlabHook(hookSecret)
	got := e.waitApp("web", "Stalled on the render error", 20*time.Second, func(a *kv1.Application) bool {
		return apimeta.IsStatusConditionTrue(a.Status.Conditions, kv1.StalledCondition)
	})
	if msg := condition(got, kv1.StalledCondition); !strings.Contains(msg, "deploy/cm.yaml:") || !strings.Contains(msg, "RenderFailed") {
		t.Fatalf("stalled condition: %s", msg)
	}
	if got.Status.LastAppliedRevision != first || got.Status.History[0].Revision != bad || got.Status.History[0].Result != kv1.SyncResultFailed {
		t.Fatalf("status after a bad commit: lastApplied %s history %+v", got.Status.LastAppliedRevision, got.Status.History[0])
	}
	if img := e.image(); img != "registry.example.com/web:1.0" {
		t.Fatalf("last good state not kept: %s", img)
	}

	t.Log("an empty render prunes nothing")
	e.push(map[string]string{"deploy/README.md": "nothing to deploy\n"}, []string{"deploy/cm.yaml", "deploy/deploy.yaml", "deploy/svc.yaml"}, "empty")
	e.gitlabHook(hookSecret)
	e.waitApp("web", "refused empty render", 20*time.Second, func(a *kv1.Application) bool {
		return strings.Contains(condition(a, kv1.StalledCondition), "no objects")
	})
	if _, err := e.cs.AppsV1().Deployments(appNS).Get(ctx, "web", metav1.GetOptions{}); err != nil {
		t.Fatalf("empty render pruned the Deployment: %v", err)
	}

	t.Log("cross-namespace and cluster-scoped objects are refused, naming them")
	files := manifests("registry.example.com/web:1.0", "hello")
	files["deploy/other.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: sneaky\n  namespace: kube-system\n"
	files["deploy/cr.yaml"] = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: all\nrules: []\n"
	e.push(files, []string{"deploy/README.md"}, "sneaky")
	e.gitlabHook(hookSecret)
	e.waitApp("web", "refused objects", 20*time.Second, func(a *kv1.Application) bool {
		msg := condition(a, kv1.StalledCondition)
		return strings.Contains(msg, "ConfigMap/sneaky") && strings.Contains(msg, "ClusterRole/all")
	})
	if _, err := e.cs.CoreV1().ConfigMaps("kube-system").Get(ctx, "sneaky", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("cross-namespace object written: %v", err)
	}

	t.Log("a good commit clears the stall")
	good := e.push(manifests("registry.example.com/web:1.3", "hello"), []string{"deploy/other.yaml", "deploy/cr.yaml"}, "fix")
	e.gitlabHook(hookSecret)
	e.waitApp("web", "Ready at the fixed commit", 30*time.Second, func(a *kv1.Application) bool {
		return ready(a) && a.Status.LastAppliedRevision == good
	})
	if apimeta.IsStatusConditionTrue(e.app("web").Status.Conditions, kv1.StalledCondition) {
		t.Fatalf("still stalled: %s", condition(e.app("web"), kv1.StalledCondition))
	}
}

// TestGitOutageIsReportedAndRecovered: the Git server answers 503 to
// everything for a full minute, right after a push. Throughout, the
// Application says so and what runs is untouched; when Git is back the
// pushed commit is applied without anyone asking (retries back off to at
// most a minute), and recorded once.
func TestGitOutageIsReportedAndRecovered(t *testing.T) {
	e, _ := seedApp(t, time.Hour)
	next := e.bumpTo("registry.example.com/web:1.1")
	e.git.SetDown(true)
	down := time.Now()
	requestSync(t, e, "outage")
	e.waitApp("web", "Git failure reported", 20*time.Second, func(a *kv1.Application) bool {
		return strings.Contains(condition(a, kv1.ReadyCondition), "GitOperationFailed")
	})
	for time.Since(down) < time.Minute {
		e.stillRunning("registry.example.com/web:1.0")
		if msg := condition(e.app("web"), kv1.ReadyCondition); !strings.Contains(msg, "GitOperationFailed") {
			t.Fatalf("during the outage Ready says %q", msg)
		}
		time.Sleep(5 * time.Second)
	}
	e.git.SetDown(false)
	back := time.Now()
	e.assertConverged(next, "registry.example.com/web:1.1")
	t.Logf("applied %s after Git came back", time.Since(back).Round(100*time.Millisecond))
}

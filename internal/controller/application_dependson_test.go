package controller_test

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/controller"
)

// dependentApp creates Application name of appNS rendering path, which
// depends on deps.
func (e *env) dependentApp(name, path string, deps ...kv1.Dependency) {
	e.t.Helper()
	e.dependentAppEvery(name, path, 5*time.Second, deps...)
}

// dependentAppEvery is dependentApp with its interval.
func (e *env) dependentAppEvery(name, path string, interval time.Duration, deps ...kv1.Dependency) {
	e.t.Helper()
	app := &kv1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: appNS},
		Spec: kv1.ApplicationSpec{
			Source: kv1.ApplicationSource{RepoURL: e.git.RepoURL(repoName), TargetRevision: "main", Path: path,
				SecretRef: &kv1.LocalObjectReference{Name: "myapp-git"}},
			SyncPolicy: &kv1.SyncPolicy{Automated: &kv1.AutomatedSyncPolicy{Prune: true, SelfHeal: true}},
			Interval:   &metav1.Duration{Duration: interval},
			DependsOn:  deps,
		},
	}
	if err := e.admin.Create(e.t.Context(), app); err != nil {
		e.t.Fatal(err)
	}
}

func configMapFile(name, value string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\ndata:\n  v: \"" + value + "\"\n"
}

func (e *env) configMapValue(name string) string {
	e.t.Helper()
	cm := &corev1.ConfigMap{}
	if err := e.admin.Get(e.t.Context(), client.ObjectKey{Namespace: appNS, Name: name}, cm); err != nil {
		if apierrors.IsNotFound(err) {
			return "<none>"
		}
		e.t.Fatal(err)
	}
	return cm.Data["v"]
}

func waitingOn(a *kv1.Application, name, reason string) bool {
	w := a.Status.WaitingOn
	return w != nil && w.Name == name && w.Reason == reason && readyReason(a) == kv1.ReasonDependencyNotReady
}

// TestDependentsAreWokenByTheirDependency: a dependent syncs as soon as
// its dependency is Ready, not at its own interval (an hour here): the
// dependency's change finds it through the dependsOn index, among
// Applications that depend on others and ones that do not.
func TestDependentsAreWokenByTheirDependency(t *testing.T) {
	e := newEnv(t, teamB)
	e.push(map[string]string{"a/cm.yaml": configMapFile("a", "1"), "b/cm.yaml": configMapFile("b", "1"),
		"c/cm.yaml": configMapFile("c", "1")}, nil, "three apps")
	time.Sleep(1100 * time.Millisecond)
	e.startController(5 * time.Second)

	e.dependentAppEvery("b", "b", time.Hour, kv1.Dependency{Name: "a"})
	e.dependentAppEvery("c", "c", time.Hour, kv1.Dependency{Name: "other"})
	e.waitApp("b", "waiting for a", time.Minute, func(a *kv1.Application) bool { return waitingOn(a, "a", controller.DependencyNotFound) })
	e.dependentAppEvery("a", "a", time.Hour)
	e.waitApp("b", "synced once a is Ready, long before its interval", time.Minute, func(a *kv1.Application) bool { return ready(a) && a.Status.WaitingOn == nil })
	if c := e.app("c"); !waitingOn(c, "other", controller.DependencyNotFound) {
		t.Fatalf("c, which depends on another Application, moved: %+v", c.Status.WaitingOn)
	}
}

// TestDependsOn: an Application waits for the Applications it depends on
// (status and keyless get say which and why), syncs when they are Ready,
// waits again when one moves to a revision that fails; a cycle is
// reported on each member naming it; a dependency in another namespace
// is refused until that Application allows the namespace.
func TestDependsOn(t *testing.T) {
	e := newEnv(t, teamB)
	ctx := t.Context()
	e.push(map[string]string{"a/cm.yaml": configMapFile("a", "1"), "b/cm.yaml": configMapFile("b", "1"),
		"c/cm.yaml": configMapFile("c", "1"), "d/cm.yaml": configMapFile("d", "1")}, nil, "four apps")
	time.Sleep(1100 * time.Millisecond)
	e.startController(5 * time.Second)

	e.dependentApp("b", "b", kv1.Dependency{Name: "a"})
	b := e.waitApp("b", "waiting for a, which does not exist", time.Minute, func(a *kv1.Application) bool { return waitingOn(a, "a", controller.DependencyNotFound) })
	if !strings.Contains(conditionMessage(b), "waiting for Application a") || b.Status.WaitingOn.Since.IsZero() {
		t.Fatalf("Ready message %q / waitingOn %+v do not say what b waits for and since when", conditionMessage(b), b.Status.WaitingOn)
	}
	if v := e.configMapValue("b"); v != "<none>" {
		t.Fatalf("b synced before its dependency existed (ConfigMap b = %s)", v)
	}
	if code, out, errOut := e.keyless("", "get", "apps", "-n", appNS); code != 0 || !strings.Contains(out, "waiting for Application a: NotFound") {
		t.Fatalf("keyless get apps does not show the wait: %d\n%s%s", code, out, errOut)
	}

	e.dependentApp("a", "a")
	e.waitApp("b", "synced once a is Ready", time.Minute, func(a *kv1.Application) bool { return ready(a) && a.Status.WaitingOn == nil })
	if v := e.configMapValue("b"); v != "1" {
		t.Fatalf("ConfigMap b = %s after a became Ready", v)
	}

	t.Run("a dependency's failing revision holds the next sync", func(t *testing.T) {
		e.push(map[string]string{"a/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a\n"}, nil, "a breaks")
		e.waitApp("a", "a's render failing", time.Minute, func(a *kv1.Application) bool { return readyReason(a) == controller.ReasonRenderFailed })
		e.push(map[string]string{"b/cm.yaml": configMapFile("b", "2")}, nil, "b moves")
		b := e.waitApp("b", "waiting for a's failed render", time.Minute, func(a *kv1.Application) bool {
			return waitingOn(a, "a", controller.ReasonRenderFailed)
		})
		if !strings.Contains(conditionMessage(b), "RenderFailed") {
			t.Fatalf("b's message %q does not say why a is not ready", conditionMessage(b))
		}
		time.Sleep(2 * time.Second)
		if v := e.configMapValue("b"); v != "1" {
			t.Fatalf("b's new revision was applied while a failed (ConfigMap b = %s)", v)
		}
		e.push(map[string]string{"a/cm.yaml": configMapFile("a", "3")}, nil, "a fixed")
		e.waitApp("b", "synced after a's fix", time.Minute, func(a *kv1.Application) bool { return ready(a) && a.Status.WaitingOn == nil })
		if v := e.configMapValue("b"); v != "2" {
			t.Fatalf("ConfigMap b = %s after a's fix, want 2", v)
		}
	})

	t.Run("a cycle is reported on every member", func(t *testing.T) {
		e.dependentApp("c", "c", kv1.Dependency{Name: "d"})
		e.dependentApp("d", "d", kv1.Dependency{Name: "c"})
		for _, name := range []string{"c", "d"} {
			other := map[string]string{"c": "d", "d": "c"}[name]
			a := e.waitApp(name, "reporting the cycle", time.Minute, func(a *kv1.Application) bool { return waitingOn(a, other, controller.DependencyCycle) })
			if want := name + " → " + other + " → " + name; !strings.Contains(a.Status.WaitingOn.Message, want) {
				t.Errorf("%s: cycle message %q, want it to name %s", name, a.Status.WaitingOn.Message, want)
			}
		}
	})

	t.Run("another namespace only when that Application allows it", func(t *testing.T) {
		e.tenantApp(teamB, "shared", e.git.RepoURL(repoName), "main", "a", "")
		e.dependentApp("uses-shared", "b", kv1.Dependency{Name: "shared", Namespace: teamB})
		e.waitApp("uses-shared", "refused: not allowed", time.Minute, func(a *kv1.Application) bool {
			return waitingOn(a, "shared", controller.DependencyNotAllowed)
		})
		shared := &kv1.Application{}
		if err := e.admin.Get(ctx, client.ObjectKey{Namespace: teamB, Name: "shared"}, shared); err != nil {
			t.Fatal(err)
		}
		patch := client.MergeFrom(shared.DeepCopy())
		shared.Annotations = map[string]string{kv1.AllowDependentsFromAnnotation: appNS}
		if err := e.admin.Patch(ctx, shared, patch); err != nil {
			t.Fatal(err)
		}
		a := e.waitApp("uses-shared", "past the refusal", time.Minute, func(a *kv1.Application) bool {
			return a.Status.WaitingOn == nil || a.Status.WaitingOn.Reason != controller.DependencyNotAllowed
		})
		t.Logf("once allowed: waitingOn %+v", a.Status.WaitingOn)
	})
}

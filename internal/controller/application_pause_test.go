package controller_test

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/ledger"
)

// TestPause: `keyless pause` (break-glass) stops self-heal for a bounded
// time: a change made by hand meanwhile stays, reported as drift with the
// field manager that made it and who paused; at the pause's end it is
// reverted to Git. A pause without expiry, or longer than the bound, is
// refused.
func TestPause(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	rev := e.push(manifests("registry.example.com/web:1.0", "hello"), nil, "web")
	time.Sleep(1100 * time.Millisecond)
	records := withLedger(t, e)
	e.startController(5 * time.Second)
	e.createApp("web", "deploy", 5*time.Second)
	e.waitApp("web", "synced", time.Minute, func(a *kv1.Application) bool { return a.Status.LastAppliedRevision == rev && ready(a) })

	for _, args := range [][]string{{"--reason", "INC-1"}, {"--for", "48h", "--reason", "INC-1"}, {"--for", "10m"}} {
		if code, _, errOut := e.keyless("", append([]string{"pause", "web", "-n", appNS}, args...)...); code == 0 {
			t.Fatalf("pause %v was accepted: %s", args, errOut)
		}
	}
	code, out, errOut := e.keyless("", "pause", "web", "-n", appNS, "--for", "25s", "--reason", "INC-123 scaling by hand", "--as", "bob@example.com", "--as-group", "system:masters")
	if code != 0 || !strings.Contains(out, "paused by bob@example.com") {
		t.Fatalf("pause: %d\n%s%s", code, out, errOut)
	}
	paused := time.Now()

	// The hand-made change, repeated until the controller reports it (a
	// watch that starts lists first and reports edits after).
	var a *kv1.Application
	waitForOr(t, 40*time.Second, "the change reported as paused drift", func() (bool, string) {
		d, err := e.cs.AppsV1().Deployments(appNS).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		if *d.Spec.Replicas != 5 || d.Annotations["edited"] == "" || time.Since(parseTime(d.Annotations["edited"])) > 3*time.Second {
			d.Spec.Replicas = ptr.To(int32(5))
			if d.Annotations == nil {
				d.Annotations = map[string]string{}
			}
			d.Annotations["edited"] = time.Now().Format(time.RFC3339Nano)
			if _, err := e.cs.AppsV1().Deployments(appNS).Update(ctx, d, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
				return false, err.Error()
			}
		}
		a = e.waitApp("web", "read", time.Second, func(*kv1.Application) bool { return true })
		p := a.Status.Pause
		return p != nil && len(p.Drift) > 0, condition(a, kv1.ReadyCondition)
	}, func() string { return "" })
	p := a.Status.Pause
	if p.By != "bob@example.com" || p.Reason != "INC-123 scaling by hand" || !strings.Contains(strings.Join(p.Drift, ","), "Deployment/web configured (by kubectl-edit") {
		t.Fatalf("status.pause = %+v", p)
	}
	if !strings.Contains(conditionMessage(a), "self-heal paused by bob@example.com") {
		t.Errorf("the Ready message %q does not say the pause", conditionMessage(a))
	}
	if r := ledgerRecord(records(), ledger.KindPause, "web"); r == nil || r.By != "bob@example.com" || r.Reason != "INC-123 scaling by hand" ||
		r.Until.Sub(p.Until.Time).Abs() > time.Second {
		t.Errorf("the ledger's pause record %+v, status.pause %+v", r, p)
	}
	if d, _ := e.cs.AppsV1().Deployments(appNS).Get(ctx, "web", metav1.GetOptions{}); *d.Spec.Replicas != 5 {
		t.Fatalf("the change was reverted during the pause (replicas %d)", *d.Spec.Replicas)
	}
	if time.Since(paused) > 25*time.Second {
		t.Logf("the drift was seen only %s after the pause", time.Since(paused))
	}

	a = e.waitApp("web", "reverted to Git at the pause's end", time.Minute, func(a *kv1.Application) bool {
		d, err := e.cs.AppsV1().Deployments(appNS).Get(ctx, "web", metav1.GetOptions{})
		return err == nil && *d.Spec.Replicas == 1 && a.Status.Pause == nil
	})
	if time.Since(paused) < 25*time.Second {
		t.Fatalf("reverted %s after a 25s pause", time.Since(paused))
	}
	if !strings.Contains(e.events(appNS), kv1.ReasonPaused) {
		t.Errorf("no %s Event", kv1.ReasonPaused)
	}
}

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

// TestPauseCodify: `keyless pause --codify` writes the drift made by hand
// during a pause into Git — one commit, authored by the person, changing
// exactly the drifted values byte-for-byte — and once it syncs, what was
// changed by hand is what Git says: nothing is reverted at the pause's end.
func TestPauseCodify(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	files := manifests("registry.example.com/web:1.0", "hello")
	rev := e.push(files, nil, "web")
	e.startController(5 * time.Second)
	e.createApp("web", "deploy", 5*time.Second)
	e.waitApp("web", "synced", time.Minute, func(a *kv1.Application) bool { return a.Status.LastAppliedRevision == rev && ready(a) })

	if code, _, errOut := e.keyless("", "pause", "web", "-n", appNS, "--codify", "--author", "Bob <bob@example.com>"); code == 0 || !strings.Contains(errOut, "is not paused") {
		t.Fatalf("codify without a pause: exit %d: %s", code, errOut)
	}
	if code, out, errOut := e.keyless("", "pause", "web", "-n", appNS, "--for", "45s", "--reason", "INC-7 hot fix"); code != 0 {
		t.Fatalf("pause: %d\n%s%s", code, out, errOut)
	}
	waitForOr(t, 40*time.Second, "the hand-made change reported as paused drift", func() (bool, string) {
		d, err := e.cs.AppsV1().Deployments(appNS).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		if *d.Spec.Replicas != 3 || d.Spec.Template.Spec.Containers[0].Image != "registry.example.com/web:1.0-hotfix" {
			d.Spec.Replicas = ptr.To(int32(3))
			d.Spec.Template.Spec.Containers[0].Image = "registry.example.com/web:1.0-hotfix"
			if _, err := e.cs.AppsV1().Deployments(appNS).Update(ctx, d, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
				return false, err.Error()
			}
		}
		a := e.app("web")
		return a.Status.Pause != nil && strings.Contains(strings.Join(a.Status.Pause.Drift, ","), "Deployment/web"), condition(a, kv1.ReadyCondition)
	}, func() string { return "" })

	want := strings.NewReplacer("replicas: 1", "replicas: 3", "image: registry.example.com/web:1.0\n", "image: registry.example.com/web:1.0-hotfix\n").Replace(files["deploy/deploy.yaml"])
	t.Log("for review: the commit pushed as a new branch, main untouched")
	code, out, errOut := e.keyless("", "pause", "web", "-n", appNS, "--codify", "--author", "Bob <bob@example.com>", "--push", "--new-branch", "codify-inc-7", "--allow-insecure-http")
	if code != 0 || !strings.Contains(errOut, "open a pull/merge request") {
		t.Fatalf("codify --new-branch: exit %d\n%s%s", code, out, errOut)
	}
	if got, err := e.git.File(ctx, repoName, "codify-inc-7", "deploy/deploy.yaml"); err != nil || got != want {
		t.Errorf("deploy.yaml on the new branch (%v):\n%s\nwant:\n%s", err, got, want)
	}
	if got, err := e.git.File(ctx, repoName, "main", "deploy/deploy.yaml"); err != nil || got != files["deploy/deploy.yaml"] {
		t.Errorf("main changed by codify --new-branch (%v)", err)
	}

	t.Log("to the Application's branch")
	code, out, errOut = e.keyless("", "pause", "web", "-n", appNS, "--codify", "--author", "Bob <bob@example.com>", "--push", "--allow-insecure-http")
	if code != 0 {
		t.Fatalf("codify: exit %d\n%s%s", code, out, errOut)
	}
	commit := strings.TrimSpace(out)
	got, err := e.git.File(ctx, repoName, commit, "deploy/deploy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("deploy.yaml at the codify commit:\n%s\nwant exactly the drift:\n%s", got, want)
	}
	for _, name := range []string{"deploy/cm.yaml", "deploy/svc.yaml"} {
		if other, err := e.git.File(ctx, repoName, commit, name); err != nil || other != files[name] {
			t.Errorf("%s changed by the codify commit (%v):\n%s", name, err, other)
		}
	}
	a := e.waitApp("web", "the codify commit synced", time.Minute, func(a *kv1.Application) bool { return a.Status.LastAppliedRevision == commit && ready(a) })
	if h := a.Status.History[0]; !strings.Contains(h.Author, "Bob") || !strings.Contains(h.Message, "INC-7 hot fix") {
		t.Errorf("history[0] %+v: want Bob's codify commit naming the pause", h)
	}
	e.waitApp("web", "the pause over", 2*time.Minute, func(a *kv1.Application) bool { return a.Status.Pause == nil })
	if d, _ := e.cs.AppsV1().Deployments(appNS).Get(ctx, "web", metav1.GetOptions{}); *d.Spec.Replicas != 3 || d.Spec.Template.Spec.Containers[0].Image != "registry.example.com/web:1.0-hotfix" {
		t.Errorf("after the pause: replicas %d, image %s: the codified change was reverted", *d.Spec.Replicas, d.Spec.Template.Spec.Containers[0].Image)
	}
}

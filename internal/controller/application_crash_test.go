package controller_test

import (
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/controller"
	"github.com/keyless-cd/keyless/internal/localcluster"
)

// Crashes in the middle of a sync — of the control plane and of the
// controller itself — each against real components: the last good state
// keeps running, nothing is left half-applied once the sync completes, and
// every commit is recorded once.

// gateLabel is the node label a gate Deployment's Pods need to be scheduled.
const gateLabel = "keyless.dev/gate"

// withGate adds to files a Deployment "gate" in sync wave wave whose Pods
// schedule only on a node labelled gateLabel=key: a sync that changes the
// key waits at that wave (status.operation says so) until openGate(key).
func withGate(files map[string]string, wave int, key string) map[string]string {
	files["deploy/gate.yaml"] = fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: gate
  annotations:
    argocd.argoproj.io/sync-wave: "%d"
spec:
  replicas: 1
  selector:
    matchLabels: {app: gate}
  template:
    metadata:
      labels: {app: gate}
    spec:
      nodeSelector: {%s: "%s"}
      securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
      containers:
      - name: gate
        securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
        image: registry.example.com/gate:1
`, wave, gateLabel, key)
	return files
}

// openGate labels the node so that gate Pods with key schedule.
func (e *env) openGate(key string) {
	e.t.Helper()
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%q}}}`, gateLabel, key)
	if _, err := e.cs.CoreV1().Nodes().Patch(e.t.Context(), localcluster.NodeName, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

// waitAtGate waits until the Application's sync waits for the gate in wave.
func (e *env) waitAtGate(wave int) {
	e.t.Helper()
	e.waitApp("web", fmt.Sprintf("the sync waiting at wave %d", wave), 60*time.Second, func(a *kv1.Application) bool {
		op := a.Status.Operation
		return op != nil && op.Wave == wave && slices.Contains(op.Waiting, "Deployment/gate")
	})
}

// succeededOnce fails unless history holds one successful sync of each rev.
func (e *env) succeededOnce(revs ...string) {
	e.t.Helper()
	n := map[string]int{}
	for _, h := range e.app("web").Status.History {
		if h.Result == kv1.SyncResultSucceeded {
			n[h.Revision]++
		}
	}
	for _, rev := range revs {
		if n[rev] != 1 {
			e.t.Errorf("history holds %d successful syncs of %s: %+v", n[rev], kv1.ShortSHA(rev), e.app("web").Status.History)
		}
	}
}

// restartComponent SIGKILLs a control-plane component, keeps it down for
// down, and starts it again (Revive waits until the API answers again).
func (e *env) restartComponent(name string, down time.Duration) {
	e.t.Helper()
	if err := e.cluster.Kill(name); err != nil {
		e.t.Fatal(err)
	}
	time.Sleep(down)
	if err := e.cluster.Revive(e.t.Context(), name); err != nil {
		e.t.Fatal(err)
	}
}

// TestControlPlaneRestartedMidSync: while a sync waits at its first wave,
// the API server is killed and restarted, and later etcd: the running
// version stays, and once the wave can proceed the sync completes by
// itself, recorded once.
func TestControlPlaneRestartedMidSync(t *testing.T) {
	e := newEnv(t)
	e.logs = &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("controller log:\n%s", e.logs.String())
		}
	})
	e.openGate("1")
	e.startController(time.Hour)
	first := e.push(withGate(manifests("registry.example.com/web:1.0", "hello"), -1, "1"), nil, "initial deploy")
	e.createApp("web", "deploy", time.Hour)
	e.assertConverged(first, "registry.example.com/web:1.0")

	for i, component := range []string{"kube-apiserver", "etcd"} {
		t.Logf("%s killed and restarted while the sync waits at wave -1", component)
		key := fmt.Sprint(i + 2)
		image := fmt.Sprintf("registry.example.com/web:1.%d", i+1)
		rev := e.push(withGate(manifests(image, "hello"), -1, key), nil, "web behind a closed gate")
		requestSync(t, e, component)
		e.waitAtGate(-1)
		e.restartComponent(component, 3*time.Second)
		e.stillRunning(fmt.Sprintf("registry.example.com/web:1.%d", i))
		e.openGate(key)
		e.assertConverged(rev, image)
	}
	e.succeededOnce(first)
}

// TestControllerKilledMidSync: the controller process is SIGKILLed while a
// sync waits at its first wave (after the whole set's dry-run, before the
// app's own objects are applied), and again while a later wave waits,
// after the app's objects were applied but before the last wave and the
// prune. Each time a new process finishes the sync: the
// object that left Git is pruned (the inventory was not cut short), and
// each commit is synced and recorded once.
func TestControllerKilledMidSync(t *testing.T) {
	e := newEnv(t)
	args := []string{"--allow-insecure-http"} // loopback Git over HTTP
	e.openGate("1")
	first := e.push(withGate(manifests("registry.example.com/web:1.0", "hello"), -1, "1"), nil, "initial deploy")
	a := e.startControllerProcess(args...)
	e.createApp("web", "deploy", time.Hour)
	e.waitApp("web", "Ready", 60*time.Second, func(app *kv1.Application) bool { return ready(app) && app.Status.LastAppliedRevision == first })

	t.Log("killed between the dry-run and the apply of wave 0")
	second := e.push(withGate(manifests("registry.example.com/web:1.1", "hello"), -1, "2"), nil, "web 1.1 behind a closed gate")
	requestSync(t, e, "killed-before-apply")
	e.waitAtGate(-1)
	a.stop(syscall.SIGKILL)
	e.stillRunning("registry.example.com/web:1.0")
	b := e.startControllerProcess(args...)
	e.openGate("2")
	e.waitApp("web", "converged by the new process", 90*time.Second, func(app *kv1.Application) bool {
		return ready(app) && app.Status.LastAppliedRevision == second
	})
	e.stillRunning("registry.example.com/web:1.1")

	t.Log("killed while wave 1 waits, after wave 0's apply, before wave 2 and the prune")
	files := withGate(manifests("registry.example.com/web:1.2", "hello"), 1, "3")
	delete(files, "deploy/cm.yaml")
	// A later wave, so that the sync waits for the gate (the last wave is
	// not waited for): the prune comes after it.
	files["deploy/late.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: late\n  annotations:\n    argocd.argoproj.io/sync-wave: \"2\"\ndata:\n  k: v\n"
	third := e.push(files, []string{"deploy/cm.yaml"}, "drop the settings ConfigMap")
	requestSync(t, e, "killed-before-prune")
	e.waitAtGate(1)
	b.stop(syscall.SIGKILL)
	e.stillRunning("registry.example.com/web:1.2") // wave 0 was applied
	if _, err := e.cs.CoreV1().ConfigMaps(appNS).Get(t.Context(), "late", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("wave 2 was applied before wave 1 was ready: %v", err)
	}
	if _, err := e.cs.CoreV1().ConfigMaps(appNS).Get(t.Context(), "settings", metav1.GetOptions{}); err != nil {
		t.Fatalf("the ConfigMap was pruned before the sync's last wave was ready: %v", err)
	}
	c := e.startControllerProcess(args...)
	e.openGate("3")
	got := e.waitApp("web", "converged by the third process", 90*time.Second, func(app *kv1.Application) bool {
		return ready(app) && app.Status.LastAppliedRevision == third
	})
	if _, err := e.cs.CoreV1().ConfigMaps(appNS).Get(t.Context(), "settings", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the ConfigMap that left Git was not pruned after the crash: %v", err)
	}
	for _, entry := range got.Status.Inventory {
		if entry.Kind == "ConfigMap" && entry.Name == "settings" {
			t.Errorf("the inventory still lists %s/%s", entry.Kind, entry.Name)
		}
	}

	e.succeededOnce(first, second, third)
	succeeded := map[string]int{}
	for _, p := range []*controllerProcess{a, b, c} {
		var recs []controller.AuditRecord
		for _, r := range auditLines(t, p.logs(t), true) {
			if r.Result == kv1.SyncResultSucceeded {
				recs = append(recs, r)
			}
		}
		for _, rev := range syncsOf(recs, "web") {
			succeeded[rev]++
		}
	}
	for _, rev := range []string{first, second, third} {
		if succeeded[rev] != 1 {
			t.Errorf("the audit lines record %d successful syncs of %s (%v)", succeeded[rev], kv1.ShortSHA(rev), succeeded)
		}
	}
	for _, w := range e.cluster.WritesOutside(t, []string{controllerU, deployerU}, appNS, controlNS) {
		t.Errorf("a write outside the namespace: %s %s by %s", w.Verb, w.RequestURI, w.User.Username)
	}
}

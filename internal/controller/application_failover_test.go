package controller_test

import (
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

const acquired = `"msg":"Successfully acquired lease"`

func (e *env) leaderElected(p *controllerProcess, timeout time.Duration) {
	e.t.Helper()
	waitFor(e.t, timeout, "the controller to lead", func() (bool, string) {
		return strings.Contains(p.logs(e.t), acquired), "not leading yet"
	})
}

// TestFailover: two leader-elected controller processes; the leader is
// SIGKILLed right after a push and the standby takes over, converges the
// Application, and every commit is synced and recorded once. A leader that
// gets SIGTERM releases its Lease as it exits.
func TestFailover(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	args := []string{"--leader-elect", "--leader-election-namespace", controlNS, "--allow-insecure-http"} // loopback Git over HTTP
	first := e.push(manifests("registry.example.com/web:1.0", "hello"), nil, "initial deploy")
	a := e.startControllerProcess(args...)
	e.leaderElected(a, 30*time.Second)
	b := e.startControllerProcess(args...)
	e.createApp("web", "deploy", time.Hour)
	e.waitApp("web", "Ready", 60*time.Second, func(app *kv1.Application) bool { return ready(app) && app.Status.LastAppliedRevision == first })
	if got := syncsOf(auditLines(t, b.logs(t), true), "web"); len(got) != 0 || strings.Contains(b.logs(t), acquired) {
		t.Fatalf("the standby synced (%v) or leads while the leader runs", got)
	}

	t.Log("SIGKILL the leader right after a push")
	next := e.bumpTo("registry.example.com/web:1.1")
	requestSync(t, e, "failover")
	a.stop(syscall.SIGKILL)
	killed := time.Now()
	e.waitApp("web", "converged by the standby", 90*time.Second, func(app *kv1.Application) bool {
		return ready(app) && app.Status.LastAppliedRevision == next
	})
	t.Logf("leader killed → the standby synced the push in %s", time.Since(killed).Round(100*time.Millisecond))
	syncs := append(syncsOf(auditLines(t, a.logs(t), true), "web"), syncsOf(auditLines(t, b.logs(t), true), "web")...)
	count := map[string]int{}
	for _, rev := range syncs {
		count[rev]++
	}
	if count[next] != 1 {
		t.Fatalf("syncs of the pushed commit: %d (all: %v)", count[next], syncs)
	}
	seen := map[string]int{}
	for _, h := range e.app("web").Status.History {
		seen[h.Revision]++
	}
	if seen[first] != 1 || seen[next] != 1 {
		t.Fatalf("history %v: each commit once", seen)
	}
	if e.image() != "registry.example.com/web:1.1" {
		t.Fatalf("image %s", e.image())
	}

	t.Log("SIGTERM releases the Lease")
	b.stop(syscall.SIGTERM)
	lease, err := e.cs.CoordinationV1().Leases(controlNS).Get(ctx, "keyless-controller", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := lease.Spec.HolderIdentity; h != nil && *h != "" {
		t.Fatalf("the Lease is still held by %s after a graceful shutdown", *h)
	}
}

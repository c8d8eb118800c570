package controller_test

import (
	"strings"
	"testing"
	"time"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

// unschedulable makes files' Deployment wait for a node no one has: it
// stays Progressing until its progress deadline.
func unschedulable(files map[string]string) map[string]string {
	files["deploy/deploy.yaml"] = strings.Replace(files["deploy/deploy.yaml"],
		"    spec:\n      securityContext", "    spec:\n      nodeSelector: {keyless.dev/never: \"true\"}\n      securityContext", 1)
	return files
}

// TestProgressingWaitsForEvents: while a rollout waits, an Application
// whose kinds are all watched reads nothing until one of its objects
// changes; when the rollout moves on, its status updates make the
// Application Ready at once, not at the next poll.
func TestProgressingWaitsForEvents(t *testing.T) {
	e, _ := seedApp(t, time.Hour)

	t.Log("a rollout that cannot finish: its pod fits no node")
	e.push(unschedulable(manifests("registry.example.com/web:2.0", "hello")), nil, "web 2.0 on no node")
	requestSync(t, e, "stuck")
	e.waitApp("web", "Progressing", 30*time.Second, func(a *kv1.Application) bool {
		return a.Status.Health.Status == kv1.HealthProgressing && a.Status.LastHandledSyncRequest == "stuck"
	})
	time.Sleep(time.Second) // the rollout's first status updates
	before := reconcileCount(t)
	time.Sleep(8 * time.Second)
	if n := reconcileCount(t) - before; n > 1 {
		t.Fatalf("%.0f reconciles in 8 s of a rollout with nothing moving: polled instead of waiting for events", n)
	}

	t.Log("a rollout that finishes: Ready as soon as the Deployment says so")
	e.push(manifests("registry.example.com/web:3.0", "hello"), nil, "web 3.0")
	requestSync(t, e, "fixed")
	start := time.Now()
	e.waitApp("web", "Ready at web 3.0", 20*time.Second, func(a *kv1.Application) bool {
		return ready(a) && a.Status.LastHandledSyncRequest == "fixed" && a.Status.Health.Status == kv1.HealthHealthy
	})
	t.Logf("Ready %s after the sync request", time.Since(start).Round(100*time.Millisecond))
}

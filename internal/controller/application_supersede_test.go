package controller_test

import (
	"strings"
	"testing"
	"time"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

// TestNewCommitCancelsAStuckWait: a PreSync hook that never completes holds
// the sync in its wait (--hook-timeout is long); a fixing commit ends that
// wait and is applied within seconds, not after the timeout, and history
// records the abandoned sync as such.
func TestNewCommitCancelsAStuckWait(t *testing.T) {
	e := newEnv(t)
	e.grantJobs()
	e.hookTimeout = 5 * time.Minute
	e.syncTimeout = 10 * time.Minute
	e.startController(time.Hour)
	stuck := "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\n  annotations:\n    argocd.argoproj.io/hook: PreSync\n    argocd.argoproj.io/hook-delete-policy: BeforeHookCreation\n" +
		"spec:\n  suspend: true\n  template:\n    spec:\n      restartPolicy: Never\n      securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}\n" +
		"      containers:\n      - name: m\n        image: registry.example.com/m:1\n        securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}\n"
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: b\n"
	first := e.push(map[string]string{"stuck/job.yaml": stuck, "stuck/cm.yaml": cm}, nil, "a migration that never runs")
	time.Sleep(1100 * time.Millisecond)
	e.createApp("stuck", "stuck", kv1.MinInterval)
	e.waitApp("stuck", "the sync waiting on its PreSync hook", time.Minute, func(a *kv1.Application) bool {
		return a.Status.Operation != nil && strings.Contains(strings.Join(a.Status.Operation.Waiting, ","), "Job/migrate")
	})

	fixed := strings.Replace(stuck, "suspend: true", "suspend: false", 1)
	pushed := time.Now()
	second := e.push(map[string]string{"stuck/job.yaml": fixed}, nil, "the migration runs")
	a := e.waitApp("stuck", "the fix applied", 90*time.Second, func(a *kv1.Application) bool {
		return a.Status.LastAppliedRevision == second && ready(a)
	})
	if took := time.Since(pushed); took > 2*time.Minute {
		t.Fatalf("the fix took %s: the stuck wait was not cancelled", took)
	}
	var abandoned *kv1.SyncRecord
	for i := range a.Status.History {
		if a.Status.History[i].Revision == first {
			abandoned = &a.Status.History[i]
		}
	}
	if abandoned == nil || abandoned.Result != kv1.SyncResultAbandoned || !strings.Contains(abandoned.Error, kv1.ShortSHA(second)) {
		t.Fatalf("history of the first revision = %+v, want Abandoned naming %s", abandoned, kv1.ShortSHA(second))
	}
	if !strings.Contains(e.events(appNS), kv1.ReasonSyncAbandoned) {
		t.Errorf("no %s Event:\n%s", kv1.ReasonSyncAbandoned, e.events(appNS))
	}
}

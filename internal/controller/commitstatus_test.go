package controller

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/forge"
)

const (
	shaA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	shaB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func statusApp(attempted, applied string, ready metav1.ConditionStatus, reason, msg string) *kv1.Application {
	app := &kv1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "web"}}
	app.Spec.CommitStatus = &kv1.CommitStatus{Provider: kv1.ForgeGitea, TargetURL: "https://ui/web"}
	app.Status.LastAttemptedRevision, app.Status.LastAppliedRevision = attempted, applied
	if reason != "" {
		setReady(app, ready == metav1.ConditionTrue, reason, msg)
	}
	return app
}

func TestCommitStatusOf(t *testing.T) {
	cases := map[string]struct {
		app      *kv1.Application
		want     forge.State
		wantDesc string
		wantNone bool
	}{
		"synced and healthy":       {app: statusApp(shaA, shaA, metav1.ConditionTrue, ReasonSucceeded, "applied"), want: forge.StateSuccess},
		"rolling out":              {app: statusApp(shaA, shaA, metav1.ConditionFalse, ReasonProgressing, "Deployment/web: 0/1"), want: forge.StatePending, wantDesc: "0/1"},
		"render failed at new sha": {app: statusApp(shaB, shaA, metav1.ConditionFalse, ReasonRenderFailed, "deploy/x.yaml:3: bad"), want: forge.StateFailure, wantDesc: "deploy/x.yaml:3"},
		"refused":                  {app: statusApp(shaB, shaA, metav1.ConditionFalse, ReasonRefused, "ClusterRole/x is cluster-scoped"), want: forge.StateFailure, wantDesc: "ClusterRole"},
		"hook failed":              {app: statusApp(shaB, shaA, metav1.ConditionFalse, ReasonHookFailed, "Job/migrate failed"), want: forge.StateFailure},
		"degraded":                 {app: statusApp(shaA, shaA, metav1.ConditionFalse, kv1.HealthDegraded, "Deployment/web failed"), want: forge.StateFailure, wantDesc: "degraded"},
		"waits for a manual sync":  {app: statusApp(shaB, shaA, metav1.ConditionFalse, ReasonOutOfSync, "out of sync: Deployment/web"), want: forge.StatePending},
		"awaits approval":          {app: statusApp(shaB, shaA, metav1.ConditionFalse, kv1.ReasonAwaitingApproval, "awaiting approval …"), want: forge.StatePending, wantDesc: AwaitingApprovalMessage},
		"git outage says nothing":  {app: statusApp(shaA, shaA, metav1.ConditionFalse, ReasonGitFailed, "connection refused"), wantNone: true},
		"no condition yet":         {app: statusApp(shaA, "", "", "", ""), wantNone: true},
		"nothing attempted":        {app: statusApp("", "", metav1.ConditionFalse, ReasonInvalidSpec, "x"), wantNone: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			st, ok := commitStatusOf(tc.app)
			if tc.wantNone {
				if ok {
					t.Fatalf("got %+v, want no status", st)
				}
				return
			}
			if !ok || st.State != tc.want || st.SHA != tc.app.Status.LastAttemptedRevision {
				t.Fatalf("got %+v (ok %v), want %s on the attempted commit", st, ok, tc.want)
			}
			if st.Context != "keyless/team-a/web" || st.TargetURL != "https://ui/web" || !strings.Contains(st.Description, tc.wantDesc) {
				t.Errorf("got %+v", st)
			}
		})
	}
	noSpec := statusApp(shaA, shaA, metav1.ConditionTrue, ReasonSucceeded, "applied")
	noSpec.Spec.CommitStatus = nil
	if _, ok := commitStatusOf(noSpec); ok {
		t.Error("an Application without spec.commitStatus reports nothing")
	}
	suspended := statusApp(shaA, shaA, metav1.ConditionTrue, ReasonSucceeded, "applied")
	suspended.Spec.Suspend = true
	if _, ok := commitStatusOf(suspended); ok {
		t.Error("a suspended Application reports nothing")
	}
}

func TestSyncEventOf(t *testing.T) {
	cases := []struct {
		rec  kv1.SyncRecord
		want string
	}{
		{kv1.SyncRecord{Trigger: TriggerRevision, Result: kv1.SyncResultSucceeded}, kv1.EventSynced},
		{kv1.SyncRecord{Trigger: TriggerDrift, Result: kv1.SyncResultSucceeded}, kv1.EventDriftReverted},
		{kv1.SyncRecord{Trigger: TriggerRevision, Result: kv1.SyncResultFailed}, kv1.EventSyncFailed},
		{kv1.SyncRecord{Trigger: TriggerDrift, Result: kv1.SyncResultFailed}, kv1.EventSyncFailed},
		{kv1.SyncRecord{Trigger: TriggerDelete, Result: kv1.SyncResultSucceeded}, ""},
	}
	for _, tc := range cases {
		if got := syncEventOf(tc.rec); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.rec, got, tc.want)
		}
	}
}

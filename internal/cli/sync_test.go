package cli

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

func TestDescribeOperation(t *testing.T) {
	for _, tc := range []struct {
		op   *kv1.OperationStatus
		want string
	}{
		{nil, ""},
		{&kv1.OperationStatus{Phase: "Sync"}, "Sync: applying"},
		{&kv1.OperationStatus{Phase: "PreSync", Wave: -1, Waiting: []string{"Job/migrate"}}, "PreSync wave -1: waiting for Job/migrate"},
		{&kv1.OperationStatus{Phase: "Sync", Wave: 2, Waiting: []string{"Deployment/web", "StatefulSet/db"}}, "Sync wave 2: waiting for Deployment/web, StatefulSet/db"},
	} {
		if got := describeOperation(tc.op); got != tc.want {
			t.Errorf("describeOperation(%+v) = %q, want %q", tc.op, got, tc.want)
		}
	}
}

// TestReportSync: the answer to a request — the new record with each
// object changed and each hook, an error for a failed sync or a failure
// before any sync (the Ready condition), nothing failing while rolling out.
func TestReportSync(t *testing.T) {
	old := kv1.SyncRecord{Revision: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", Result: kv1.SyncResultSucceeded, StartedAt: metav1.NewTime(time.Unix(100, 0))}
	fresh := kv1.SyncRecord{Revision: "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", Result: kv1.SyncResultSucceeded, StartedAt: metav1.NewTime(time.Unix(200, 0)),
		Message: "chore: web 1.1", Author: "Dana", Changes: "0 created, 1 configured, 0 pruned", Changed: []string{"Deployment/web configured"},
		Hooks: []kv1.HookRecord{{Kind: "Job", Name: "migrate", Phase: "PreSync", Result: "Succeeded", Duration: "3s"}}}
	failed := fresh
	failed.Result, failed.Error, failed.Changed, failed.Hooks = kv1.SyncResultFailed, "apply: Deployment/web: forbidden", nil, nil
	cond := func(st metav1.ConditionStatus, reason, msg string) []metav1.Condition {
		return []metav1.Condition{{Type: kv1.ReadyCondition, Status: st, Reason: reason, Message: msg}}
	}
	for _, tc := range []struct {
		name     string
		history  []kv1.SyncRecord
		conds    []metav1.Condition
		wantOut  []string
		wantErr  string
		notWants []string
	}{
		{name: "applied", history: []kv1.SyncRecord{fresh, old}, conds: cond(metav1.ConditionTrue, kv1.ReasonSucceeded, "applied revision bbbbbbb"),
			wantOut: []string{"bbbbbbb Succeeded: chore: web 1.1 by Dana (0 created, 1 configured, 0 pruned)\n", "  Deployment/web configured\n", "  hook PreSync Job/migrate Succeeded 3s\n"}},
		{name: "sync failed", history: []kv1.SyncRecord{failed, old}, conds: cond(metav1.ConditionFalse, kv1.ReasonApplyFailed, "apply: Deployment/web: forbidden"),
			wantOut: []string{"bbbbbbb Failed"}, wantErr: "apply: Deployment/web: forbidden"},
		{name: "failed before any sync", history: []kv1.SyncRecord{old}, conds: cond(metav1.ConditionFalse, kv1.ReasonGitFailed, "ls-remote: authentication required"),
			wantErr: "GitOperationFailed: ls-remote: authentication required", notWants: []string{"aaaaaaa"}},
		{name: "rolling out", history: []kv1.SyncRecord{fresh, old}, conds: cond(metav1.ConditionFalse, kv1.ReasonProgressing, "Deployment/web: 1 of 2 updated"),
			wantOut: []string{"bbbbbbb Succeeded", "rolling out: Deployment/web: 1 of 2 updated\n"}},
		{name: "nothing new, Ready", history: []kv1.SyncRecord{old}, conds: cond(metav1.ConditionTrue, kv1.ReasonSucceeded, "applied revision aaaaaaa"),
			wantOut: []string{"applied revision aaaaaaa\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := &kv1.Application{Status: kv1.ApplicationStatus{History: tc.history, Conditions: tc.conds}}
			var out strings.Builder
			err := reportSync(&out, app, &old)
			if (err == nil) != (tc.wantErr == "") || (err != nil && err.Error() != tc.wantErr) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
			wantOutput(t, out.String(), tc.wantOut, tc.notWants)
		})
	}
}

func TestUnacknowledgedError(t *testing.T) {
	app := &kv1.Application{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}}
	if err := unacknowledgedError(app, time.Minute); !strings.Contains(err.Error(), "no running controller serves namespace shop") {
		t.Errorf("unserved namespace: %v", err)
	}
	app.Labels = map[string]string{kv1.ShardLabel: "b"}
	if err := unacknowledgedError(app, time.Minute); !strings.Contains(err.Error(), kv1.ShardLabel+"=b") || !strings.Contains(err.Error(), `shard "b"`) {
		t.Errorf("unserved shard: %v", err)
	}
	app.Status.Operation = &kv1.OperationStatus{Phase: "PostSync", Waiting: []string{"Job/smoke"}}
	if err := unacknowledgedError(app, time.Minute); !strings.Contains(err.Error(), "still running after 1m0s (PostSync: waiting for Job/smoke)") {
		t.Errorf("long sync: %v", err)
	}
}

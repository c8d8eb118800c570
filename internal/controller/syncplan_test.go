package controller

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

// planApp builds an Application in the state the table describes: synced at
// applied (attempted when set), generation observed unless specChanged.
func planApp(applied, attempted string, specChanged, stalled bool, policy *kv1.SyncPolicy, annotations map[string]string) *kv1.Application {
	a := &kv1.Application{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "team-a", Generation: 2, Annotations: annotations}}
	a.Spec.SyncPolicy = policy
	a.Status.LastAppliedRevision = applied
	a.Status.LastAttemptedRevision = applied
	if attempted != "" {
		a.Status.LastAttemptedRevision = attempted
	}
	a.Status.ObservedGeneration = 2
	if specChanged {
		a.Status.ObservedGeneration = 1
	}
	if stalled {
		a.Status.Conditions = []metav1.Condition{{Type: kv1.StalledCondition, Status: metav1.ConditionTrue, Reason: ReasonHookFailed}}
	}
	return a
}

func TestTriggerOf(t *testing.T) {
	requested := map[string]string{kv1.SyncRequestedAnnotation: "2026-12-02T00:00:00Z"}
	for _, tc := range []struct {
		name  string
		app   *kv1.Application
		sha   string
		drift uint64
		want  string
	}{
		{"nothing moved", planApp("a", "", false, false, nil, nil), "a", 0, ""},
		{"a new commit", planApp("a", "", false, false, nil, nil), "b", 0, TriggerRevision},
		{"a request wins over everything", planApp("a", "", true, false, nil, requested), "b", 7, TriggerRequest},
		{"a handled request is not one", func() *kv1.Application {
			a := planApp("a", "", false, false, nil, requested)
			a.Status.LastHandledSyncRequest = requested[kv1.SyncRequestedAnnotation]
			return a
		}(), "a", 0, ""},
		{"a new spec", planApp("a", "", true, false, nil, nil), "a", 0, TriggerSpec},
		{"a new commit wins over a new spec", planApp("a", "", true, false, nil, nil), "b", 0, TriggerRevision},
		{"drift", planApp("a", "", false, false, nil, nil), "a", 3, TriggerDrift},
		{"a spec change wins over drift", planApp("a", "", true, false, nil, nil), "a", 3, TriggerSpec},
		{"a transient failure is retried", planApp("a", "b", false, false, nil, nil), "b", 0, TriggerRetry},
		{"a permanent failure is not retried", planApp("a", "b", false, true, nil, nil), "b", 0, ""},
		{"drift beside a permanent failure is healed", planApp("a", "b", false, true, nil, nil), "b", 1, TriggerDrift},
		{"a newer commit after a permanent failure", planApp("a", "b", false, true, nil, nil), "c", 0, TriggerRevision},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := triggerOf(tc.app, tc.sha, tc.drift); got != tc.want {
				t.Errorf("triggerOf = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPlanSync(t *testing.T) {
	automated := func(prune, selfHeal bool, opts ...string) *kv1.SyncPolicy {
		return &kv1.SyncPolicy{Automated: &kv1.AutomatedSyncPolicy{Prune: prune, SelfHeal: selfHeal}, SyncOptions: opts}
	}
	requested := map[string]string{kv1.SyncRequestedAnnotation: "now"}
	for _, tc := range []struct {
		name    string
		policy  *kv1.SyncPolicy
		ann     map[string]string
		trigger string
		want    syncPlan
	}{
		{"manual app: diff only", nil, nil, TriggerRevision, syncPlan{Revision: "b"}},
		{"manual app, requested: apply without prune", nil, requested, TriggerRequest, syncPlan{Revision: "b", Apply: true}},
		{"automated: apply, prune as set", automated(true, false), nil, TriggerRevision, syncPlan{Revision: "b", Apply: true, Prune: true}},
		{"drift without selfHeal: diff against the target, no hooks", automated(true, false), nil, TriggerDrift, syncPlan{Revision: "b", Prune: true, SkipHooks: true}},
		{"drift with selfHeal: restore what last applied, without hooks", automated(false, true), nil, TriggerDrift, syncPlan{Revision: "a", Apply: true, SkipHooks: true}},
		{"a retry runs the target's hooks", automated(false, true), nil, TriggerRetry, syncPlan{Revision: "b", Apply: true}},
		{"Replace=true", automated(false, false, "Replace=true"), nil, TriggerSpec, syncPlan{Revision: "b", Apply: true, ReplaceAll: true}},
		{"Force=true", automated(false, false, "Force=true"), nil, TriggerSpec, syncPlan{Revision: "b", Apply: true, ReplaceAll: true}},
		{"Replace=false", automated(false, false, "Replace=false"), nil, TriggerSpec, syncPlan{Revision: "b", Apply: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Revision a applied, b resolved (and attempted: it failed).
			app := planApp("a", "b", false, false, tc.policy, tc.ann)
			if got := planSync(app, "b", tc.trigger); got != tc.want {
				t.Errorf("planSync = %+v, want %+v", got, tc.want)
			}
		})
	}
}

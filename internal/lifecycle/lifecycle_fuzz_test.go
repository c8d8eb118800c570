package lifecycle

import (
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// FuzzLifecycleOf feeds crafted lifecycle annotations (they come from a
// tenant's repository) to Of and NewPlan: no panic; an error is an *Error
// naming the object and annotation; a result is consistent (a skipped
// object has no phase, anything else has one, a hook always has a delete
// policy) and lands in exactly the plan steps of its phases.
func FuzzLifecycleOf(f *testing.F) {
	f.Add("PreSync", "HookSucceeded", "-1", "", "", "", "", false)
	f.Add("", "", "", "pre-install,pre-upgrade", "-5", "before-hook-creation", "", true)
	f.Add("Skip", "", "", "", "", "", "Replace=true", false)
	f.Add("PreSync,,Sync , PostSync", "BeforeHookCreation,HookFailed", "+3", "test", "x", "", "Force=true,Replace=true", false)
	f.Add("", "", "99999999999999999999", "post-delete", "", "hook-failed", "", false)
	f.Add("", "", "", "pre-rollback", "", "", "", true)
	f.Add("Unknown", "", "", "", "", "", "", false)
	f.Fuzz(func(t *testing.T, argoHook, argoPolicy, wave, helmHook, weight, helmPolicy, syncOptions string, first bool) {
		ann := map[string]string{}
		for k, v := range map[string]string{ArgoHookAnnotation: argoHook, ArgoHookDeletePolicyAnnotation: argoPolicy, ArgoSyncWaveAnnotation: wave,
			HelmHookAnnotation: helmHook, HelmHookWeightAnnotation: weight, HelmHookDeletePolicyAnnotation: helmPolicy, ArgoSyncOptionsAnnotation: syncOptions} {
			if v != "" {
				ann[k] = v
			}
		}
		o := obj("Job", "fuzz", ann)
		l, err := Of(o, first)
		if err != nil {
			var le *Error
			if !errors.As(err, &le) || le.Object != "Job/fuzz" || !strings.Contains(err.Error(), le.Annotation) {
				t.Fatalf("Of error %v does not name the object and annotation", err)
			}
			if _, perr := NewPlan([]*unstructured.Unstructured{o}, PlanOptions{FirstSync: first}); perr == nil {
				t.Fatal("NewPlan accepted what Of refused")
			}
			return
		}
		switch {
		case l.Skip && (len(l.Phases) != 0 || l.Hook):
			t.Fatalf("skipped object with phases: %+v", l)
		case !l.Skip && len(l.Phases) == 0:
			t.Fatalf("object in no phase and not skipped: %+v", l)
		case l.Hook && len(l.DeletePolicies) == 0:
			t.Fatalf("hook without a delete policy: %+v", l)
		}
		p, err := NewPlan([]*unstructured.Unstructured{o}, PlanOptions{FirstSync: first})
		if err != nil {
			t.Fatalf("NewPlan refused what Of accepted: %v", err)
		}
		placed := len(p.Skipped)
		for _, steps := range [][]Step{p.Steps, p.SyncFail, p.PreDelete, p.PostDelete} {
			for _, s := range steps {
				placed += len(s.Objects) + len(s.Hooks)
			}
		}
		want := len(l.Phases)
		if l.Skip {
			want = 1
		}
		if placed != want {
			t.Fatalf("%+v placed %d times in the plan, want %d", l, placed, want)
		}
	})
}

package lifecycle

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func obj(kind, name string, ann map[string]string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind(kind)
	if name[len(name)-1] == '-' {
		u.SetGenerateName(name)
	} else {
		u.SetName(name)
	}
	u.SetAnnotations(ann)
	return u
}

func TestOf(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ann   map[string]string
		first bool
		want  Lifecycle
	}{
		{"no annotation", nil, false, Lifecycle{Phases: []Phase{PhaseSync}}},
		{"argo wave", map[string]string{ArgoSyncWaveAnnotation: "-2"}, false, Lifecycle{Phases: []Phase{PhaseSync}, Wave: -2}},
		{"argo presync default policy", map[string]string{ArgoHookAnnotation: "PreSync"}, false,
			Lifecycle{Hook: true, Phases: []Phase{PhasePreSync}, DeletePolicies: []DeletePolicy{DeleteBeforeHookCreation}}},
		{"argo list and policies", map[string]string{ArgoHookAnnotation: "PreSync, PostSync", ArgoHookDeletePolicyAnnotation: "HookSucceeded,HookFailed", ArgoSyncWaveAnnotation: "3"}, false,
			Lifecycle{Hook: true, Phases: []Phase{PhasePreSync, PhasePostSync}, Wave: 3, DeletePolicies: []DeletePolicy{DeleteHookSucceeded, DeleteHookFailed}}},
		{"argo skip", map[string]string{ArgoHookAnnotation: "Skip"}, false, Lifecycle{Skip: true, SkipReason: ArgoHookAnnotation + ": Skip"}},
		{"argo wins over helm", map[string]string{ArgoHookAnnotation: "PostSync", HelmHookAnnotation: "pre-install"}, true,
			Lifecycle{Hook: true, Phases: []Phase{PhasePostSync}, DeletePolicies: []DeletePolicy{DeleteBeforeHookCreation}}},
		{"helm pre-install on first sync", map[string]string{HelmHookAnnotation: "pre-install,pre-upgrade", HelmHookWeightAnnotation: "-5"}, true,
			Lifecycle{Hook: true, Phases: []Phase{PhasePreSync}, Wave: -5, DeletePolicies: []DeletePolicy{DeleteBeforeHookCreation}}},
		{"helm pre-upgrade later", map[string]string{HelmHookAnnotation: "pre-install,pre-upgrade", HelmHookDeletePolicyAnnotation: "before-hook-creation,hook-succeeded"}, false,
			Lifecycle{Hook: true, Phases: []Phase{PhasePreSync}, DeletePolicies: []DeletePolicy{DeleteBeforeHookCreation, DeleteHookSucceeded}}},
		{"helm post-install only, on upgrade", map[string]string{HelmHookAnnotation: "post-install"}, false,
			Lifecycle{Skip: true, SkipReason: HelmHookAnnotation + ": post-install does not run on a later sync (upgrade)"}},
		{"helm test", map[string]string{HelmHookAnnotation: "test"}, true,
			Lifecycle{Skip: true, SkipReason: HelmHookAnnotation + ": test does not run on the first sync (install)"}},
		{"helm delete hooks", map[string]string{HelmHookAnnotation: "pre-delete,post-delete"}, false,
			Lifecycle{Hook: true, Phases: []Phase{PhasePreDelete, PhasePostDelete}, DeletePolicies: []DeletePolicy{DeleteBeforeHookCreation}}},
		{"replace via argo", map[string]string{ArgoSyncOptionsAnnotation: "Prune=false,Replace=true"}, false, Lifecycle{Phases: []Phase{PhaseSync}, Replace: true}},
		{"force via keyless", map[string]string{SyncOptionsAnnotation: "Force=true"}, false, Lifecycle{Phases: []Phase{PhaseSync}, Replace: true}},
		{"replace false", map[string]string{SyncOptionsAnnotation: "Replace=false"}, false, Lifecycle{Phases: []Phase{PhaseSync}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Of(obj("Job", "migrate", tc.ann), tc.first)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Of = %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestOfRefusesWhatItCannotHonour(t *testing.T) {
	for _, ann := range []map[string]string{
		{ArgoHookAnnotation: "PreSnyc"},
		{ArgoHookAnnotation: "PreSync", ArgoHookDeletePolicyAnnotation: "Never"},
		{ArgoSyncWaveAnnotation: "one"},
		{ArgoSyncWaveAnnotation: "99999999999999999999"},
		{HelmHookAnnotation: "pre-instal"},
		{HelmHookAnnotation: " , "},
		{HelmHookAnnotation: "pre-install", HelmHookWeightAnnotation: "x"},
		{HelmHookAnnotation: "pre-install", HelmHookDeletePolicyAnnotation: "always"},
	} {
		_, err := Of(obj("Job", "migrate", ann), true)
		var le *Error
		if !errors.As(err, &le) || le.Object != "Job/migrate" {
			t.Errorf("%v: err = %v, want an *Error naming Job/migrate", ann, err)
		}
	}
}

func TestNewPlanOrdersPhasesAndWaves(t *testing.T) {
	cmLate := obj("ConfigMap", "late", map[string]string{ArgoSyncWaveAnnotation: "1"})
	cmEarly := obj("ConfigMap", "early", map[string]string{ArgoSyncWaveAnnotation: "-1"})
	deploy := obj("Deployment", "web", nil)
	pre := obj("Job", "migrate-", map[string]string{ArgoHookAnnotation: "PreSync"})
	post := obj("Job", "smoke-", map[string]string{ArgoHookAnnotation: "PostSync"})
	fail := obj("Job", "page-", map[string]string{ArgoHookAnnotation: "SyncFail"})
	skipped := obj("Job", "test", map[string]string{HelmHookAnnotation: "test"})
	objs := []*unstructured.Unstructured{post, cmLate, deploy, fail, skipped, cmEarly, pre}

	p, err := NewPlan(objs, PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	type step struct {
		phase   Phase
		wave    int
		objects int
		hooks   int
	}
	var got []step
	for _, s := range p.Steps {
		got = append(got, step{s.Phase, s.Wave, len(s.Objects), len(s.Hooks)})
	}
	want := []step{{PhasePreSync, 0, 0, 1}, {PhaseSync, -1, 1, 0}, {PhaseSync, 0, 1, 0}, {PhaseSync, 1, 1, 0}, {PhasePostSync, 0, 0, 1}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("steps = %+v, want %+v", got, want)
	}
	if len(p.SyncFail) != 1 || p.SyncFail[0].Hooks[0] != fail {
		t.Errorf("SyncFail = %+v", p.SyncFail)
	}
	if len(p.Skipped) != 1 || p.Skipped[0].Object != "Job/test" {
		t.Errorf("Skipped = %+v", p.Skipped)
	}
	if p.Simple() {
		t.Error("a plan with hooks and waves is not simple")
	}
	if got := len(p.Objects()); got != 3 {
		t.Errorf("Objects() = %d, want the 3 ordinary objects", got)
	}

	drift, err := NewPlan(objs, PlanOptions{SkipHooks: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(drift.Hooks()) != 0 || len(drift.Steps) != 3 {
		t.Errorf("SkipHooks plan has hooks %d, steps %d; want 0 hooks and the 3 waves", len(drift.Hooks()), len(drift.Steps))
	}
}

func TestPlanWithoutLifecycleIsSimple(t *testing.T) {
	p, err := NewPlan([]*unstructured.Unstructured{obj("ConfigMap", "a", nil), obj("Deployment", "b", map[string]string{ArgoSyncWaveAnnotation: "0"})}, PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Simple() || len(p.Steps) != 1 {
		t.Errorf("Simple() = %v with %d steps, want one simple step", p.Simple(), len(p.Steps))
	}
	r, err := NewPlan([]*unstructured.Unstructured{obj("Job", "a", map[string]string{ArgoSyncOptionsAnnotation: "Replace=true"})}, PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Simple() {
		t.Error("a plan with an object to replace is not simple")
	}
}

func TestNewPlanReportsEveryAnnotationError(t *testing.T) {
	_, err := NewPlan([]*unstructured.Unstructured{
		obj("Job", "a", map[string]string{ArgoHookAnnotation: "Nope"}),
		obj("Job", "b", map[string]string{ArgoSyncWaveAnnotation: "x"}),
	}, PlanOptions{})
	var le *Error
	if !errors.As(err, &le) {
		t.Fatalf("err = %v", err)
	}
	for _, name := range []string{"Job/a", "Job/b"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}

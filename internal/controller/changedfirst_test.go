package controller

import (
	"errors"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/keyless-cd/keyless/internal/readset"
)

// valuesSource answers inputValues from a table (path → value at the
// commit); everything else is unused here.
type valuesSource struct {
	openSource
	values map[string]string
}

func (v valuesSource) inputValues(_ string, inputs []readset.Input) ([]string, error) {
	out := make([]string, len(inputs))
	for i, in := range inputs {
		val, ok := v.values[in.Path]
		if !ok {
			return nil, errors.New("no such path")
		}
		out[i] = val
	}
	return out, nil
}

func (v valuesSource) inputValuesOf(rev string, sets map[string][]readset.Input) (map[string][]string, error) {
	out := map[string][]string{}
	for k, in := range sets {
		if vals, err := v.inputValues(rev, in); err == nil {
			out[k] = vals
		}
	}
	return out, nil
}

// TestChangedApplicationsGoFirst: of the Applications reading a pushed
// repository, exactly those whose inputs the commit changed are queued
// ahead, once per commit; those of another repository are left alone.
func TestChangedApplicationsGoFirst(t *testing.T) {
	r := &ApplicationReconciler{renders: newRenderCache(), changedFirst: newChangedFirst()}
	const repo = "https://git.example.com/mono.git"
	for _, name := range []string{"a", "b", "c"} {
		in := []readset.Input{{Path: "apps/" + name + "/cm.yaml", Access: readset.File}}
		r.renders.put(types.NamespacedName{Namespace: "team", Name: name}, "opts", repo, "old", nil, in, []string{"v1"})
	}
	r.renders.put(types.NamespacedName{Namespace: "team", Name: "other"}, "opts", "https://git.example.com/other.git", "old", nil,
		[]readset.Input{{Path: "apps/b/cm.yaml", Access: readset.File}}, []string{"v1"})
	src := valuesSource{values: map[string]string{"apps/a/cm.yaml": "v1", "apps/b/cm.yaml": "v2", "apps/c/cm.yaml": "v1"}}
	r.prioritizeChanged(t.Context(), src, TriggerRevision, repo, "new")
	select {
	case ev := <-r.changedFirst.urgent:
		if ev.Object.GetName() != "b" {
			t.Fatalf("queued ahead %s, want b (the only one whose input changed)", ev.Object.GetName())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the changed Application was not queued ahead")
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(r.changedFirst.urgent); n != 0 {
		t.Fatalf("%d more Applications queued ahead", n)
	}
	r.prioritizeChanged(t.Context(), src, TriggerRevision, repo, "new")
	time.Sleep(100 * time.Millisecond)
	if n := len(r.changedFirst.urgent); n != 0 {
		t.Fatal("the same commit was compared twice")
	}
	// Each reader keeps its values at the commit, for its own pass.
	for name, want := range map[string]string{"a": "v1", "b": "v2", "c": "v1"} {
		e, _ := r.renders.lookup(types.NamespacedName{Namespace: "team", Name: name}, "opts")
		if e.nextRevision != "new" || len(e.next) != 1 || e.next[0] != want {
			t.Errorf("%s keeps %q at %q, want [%s] at new", name, e.next, e.nextRevision, want)
		}
	}
	// Values noted for an entry a newer render replaced are not kept.
	a := types.NamespacedName{Namespace: "team", Name: "a"}
	stale, _ := r.renders.lookup(a, "opts")
	r.renders.put(a, "opts", repo, "newer", nil, []readset.Input{{Path: "apps/a/cm.yaml", Access: readset.File}}, []string{"v3"})
	r.renders.noteValues(a, stale.inputs, "next", []string{"v9"})
	if e, _ := r.renders.lookup(a, "opts"); e.next != nil {
		t.Errorf("values noted for a replaced render were kept: %q", e.next)
	}
}

package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// wavedFiles is a render of n ConfigMaps, one per sync wave, and a SyncFail
// hook when syncFail is set.
func wavedFiles(n int, syncFail bool) map[string]string {
	files := map[string]string{}
	for i := range n {
		files[fmt.Sprintf("w%d.yaml", i)] = strings.Replace(configMap(fmt.Sprintf("wave-%d", i), "x"), "metadata:\n",
			fmt.Sprintf("metadata:\n  annotations:\n    argocd.argoproj.io/sync-wave: %q\n", fmt.Sprint(i)), 1)
	}
	if syncFail {
		files["fail.yaml"] = strings.Replace(configMap("on-failure", "x"), "metadata:\n",
			"metadata:\n  annotations:\n    argocd.argoproj.io/hook: SyncFail\n", 1)
	}
	return files
}

// TestTooManyWavesAreRefusedBeforeAnyWrite: a render with more waves than
// MaxSteps (SyncFail waves counted) is refused with ErrRefused naming the
// count and --max-waves, and nothing is written; at the cap it applies.
func TestTooManyWavesAreRefusedBeforeAnyWrite(t *testing.T) {
	ctx := t.Context()
	e := newEngine(t)
	cs := clientset(t)
	ns := newNamespace(t)

	_, err := e.Apply(ctx, renderFiles(t, wavedFiles(4, true)), ApplyOptions{Namespace: ns, Name: "waves", MaxSteps: 4})
	if !errors.Is(err, ErrRefused) || !IsPermanent(err) {
		t.Fatalf("got %v, want a permanent ErrRefused", err)
	}
	for _, want := range []string{"5 waves", "the 4 a sync may run", "--max-waves", "nothing was applied"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q: %v", want, err)
		}
	}
	if w := adminWrites(t, ns); len(w) > 0 {
		t.Errorf("a refused plan made %d writes, first %+v", len(w), w[0])
	}
	if _, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "wave-0", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the first wave of a refused plan was applied: %v", err)
	}

	res, err := e.Apply(ctx, renderFiles(t, wavedFiles(4, false)), ApplyOptions{Namespace: ns, Name: "waves", MaxSteps: 4})
	if err != nil {
		t.Fatalf("4 waves with --max-waves 4: %v", err)
	}
	if res.Count(ActionCreated) != 4 {
		t.Errorf("created %v, want the 4 ConfigMaps", actions(res))
	}
}

// TestSyncCutMidWaveKeepsItsInventory: a sync whose context ends while a
// wave waits (the controller's --sync-timeout, a Ctrl-C) stops there, starts
// no SyncFail hook, and still records in the inventory what it applied
// beside what was there before, so a later sync can prune it.
func TestSyncCutMidWaveKeepsItsInventory(t *testing.T) {
	e := newEngine(t)
	cs := clientset(t)
	ns := newNamespace(t)
	store := &ConfigMapStore{Client: e.Client(), Namespace: ns, Name: "cut"}
	if _, err := e.Apply(t.Context(), renderFiles(t, map[string]string{"old.yaml": configMap("old", "x")}), ApplyOptions{Namespace: ns, Name: "cut", Prune: true}); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	opts := ApplyOptions{Namespace: ns, Name: "cut", Prune: true, StepTimeout: time.Minute, WaitInterval: 100 * time.Millisecond,
		OnStep: func(p StepProgress) {
			if p.Wave == 1 && len(p.Waiting) > 0 {
				cancel() // the deadline, while wave 1 waits
			}
		}}
	res, err := e.Apply(ctx, renderFiles(t, wavedFiles(3, true)), opts)
	if err == nil {
		t.Fatal("a sync cut while wave 1 waited succeeded")
	}
	if _, err := cs.CoreV1().ConfigMaps(ns).Get(t.Context(), "wave-2", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("wave 2 was applied after the sync was cut: %v", err)
	}
	if _, err := cs.CoreV1().ConfigMaps(ns).Get(t.Context(), "on-failure", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a SyncFail hook ran after the sync was cut: %v", err)
	}
	if res == nil || len(res.Hooks) != 0 {
		t.Errorf("hook runs after the cut: %+v", res)
	}
	inv, err := store.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range inv.Entries {
		names = append(names, r.Name)
	}
	for _, want := range []string{"old", "wave-0", "wave-1"} {
		if !slices.Contains(names, want) {
			t.Errorf("inventory after the cut = %v, missing %s", names, want)
		}
	}
}

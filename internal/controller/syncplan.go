package controller

import (
	"time"

	"k8s.io/apimachinery/pkg/api/meta"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/engine"
)

// Triggers of a sync, recorded in history and the audit line.
const (
	TriggerRevision = "revision"
	TriggerDrift    = "drift"
	TriggerRequest  = "request"
	TriggerSpec     = "spec"
	TriggerRetry    = "retry"
	// TriggerDelete is the audit line of an Application's deletion.
	TriggerDelete = "delete"
)

// triggerOf says why this reconcile must sync app at revision sha, or ""
// when nothing moved. drift is the drift tracker's mark for app (0: no drift
// seen). The order is the precedence: an explicit request, a new revision, a
// new spec, drift, then a retry of a transient failure.
func triggerOf(app *kv1.Application, sha string, drift uint64) string {
	stalled := meta.IsStatusConditionTrue(app.Status.Conditions, kv1.StalledCondition)
	switch {
	case syncRequested(app):
		return TriggerRequest
	case sha != app.Status.LastAppliedRevision && sha != app.Status.LastAttemptedRevision:
		return TriggerRevision
	case app.Generation != app.Status.ObservedGeneration:
		return TriggerSpec
	case drift != 0:
		return TriggerDrift
	case app.Status.Approval != nil && app.Status.Approval.Pending != nil:
		// Out-of-namespace objects wait for approval: look for it again
		// (the render is cached), even at the applied revision.
		return TriggerRetry
	case sha != app.Status.LastAppliedRevision && !stalled:
		// The last attempt at this revision failed transiently: try again.
		return TriggerRetry
	}
	return ""
}

// syncPlan is what a reconcile does once it knows why it syncs: apply, or
// only diff and report OutOfSync, and with which engine options.
type syncPlan struct {
	// Revision is the commit to render. It is the resolved one, except for
	// a drift revert (selfHeal) while a newer revision has not applied (its
	// hooks failed, or its sync failed and waits for a retry): the revert
	// restores the last applied revision, whose hooks ran, never the newer
	// one's objects without its hooks.
	Revision string
	// Apply writes; otherwise the sync is a diff (no automated policy, or
	// drift with selfHeal off).
	Apply      bool
	Prune      bool
	AllowEmpty bool
	// SkipHooks: a self-heal revert re-applies what drifted and runs no
	// hook; hooks run for new revisions, specs, requests and retries.
	SkipHooks bool
	// ReplaceAll: the Replace=true (or Force=true) sync option.
	ReplaceAll bool
}

// planSync decides the sync of app at the resolved revision sha for
// trigger (from triggerOf).
func planSync(app *kv1.Application, sha, trigger string) syncPlan {
	p := syncPlan{
		Revision:   sha,
		Apply:      syncRequested(app) || (app.Automated() && (trigger != TriggerDrift || app.SelfHeals())),
		Prune:      app.Prunes(),
		AllowEmpty: app.AllowsEmpty(),
		SkipHooks:  trigger == TriggerDrift,
		ReplaceAll: app.SyncOptionTrue("Replace") || app.SyncOptionTrue("Force"),
	}
	// A diff reports against the resolved revision (what a sync would do);
	// a revert writes, and restores what last applied.
	if p.Apply && p.SkipHooks && app.Status.LastAppliedRevision != "" {
		p.Revision = app.Status.LastAppliedRevision
	}
	return p
}

// applyOptions are the engine options of the plan for app; each wave may
// take stepTimeout, and onStep hears of each.
func (p syncPlan) applyOptions(app *kv1.Application, stepTimeout time.Duration, onStep func(engine.StepProgress)) engine.ApplyOptions {
	return engine.ApplyOptions{
		Namespace: app.Namespace, Name: app.Name, Inventory: statusInventory{app: app},
		Prune: p.Prune, AllowEmpty: p.AllowEmpty, SkipHooks: p.SkipHooks, ReplaceAll: p.ReplaceAll,
		AllowedSubjects: app.Spec.AllowedSubjects(), StepTimeout: stepTimeout, OnStep: onStep,
	}
}

// diffOptions are the engine's diff options of the plan for app. The diff
// shows the hooks a sync would run whatever the trigger: it reports what
// differs, it runs nothing.
func (p syncPlan) diffOptions(app *kv1.Application) engine.DiffOptions {
	return engine.DiffOptions{
		Namespace: app.Namespace, Name: app.Name, Inventory: statusInventory{app: app},
		Prune: p.Prune, AllowEmpty: p.AllowEmpty, ReplaceAll: p.ReplaceAll, AllowedSubjects: app.Spec.AllowedSubjects(),
	}
}

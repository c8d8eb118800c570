package engine

import (
	"time"

	"github.com/keyless-cd/keyless/internal/lifecycle"
)

// Action is what happened (or, in a diff or dry run, would happen) to an object.
type Action string

// The actions reported per object.
const (
	ActionCreated    Action = "created"
	ActionConfigured Action = "configured"
	ActionUnchanged  Action = "unchanged"
	ActionPruned     Action = "pruned"
	// ActionPruneSkipped: left the render but kept (keyless.dev/prune: disabled,
	// or no longer labelled as part of this inventory).
	ActionPruneSkipped Action = "prune skipped"
	// ActionStale: left the render, kept because pruning is off.
	ActionStale Action = "stale (not pruned)"
	// ActionReplaced: deleted and recreated, because the API server refused
	// the change as immutable and the object opts into Replace=true.
	ActionReplaced Action = "replaced"
	// ActionHook: a hook that runs in the sync (Diff only; the runs of an
	// Apply are in Result.Hooks).
	ActionHook Action = "hook"
)

// Change is one object's outcome.
type Change struct {
	Ref    ObjectRef `json:"object"`
	Action Action    `json:"action"`
	// Diff is a unified YAML diff (Diff and dry runs only).
	Diff string `json:"diff,omitempty"`
	// Phase and Wave place the object in the sync (empty and 0 for an
	// ordinary object of a plan without waves).
	Phase lifecycle.Phase `json:"phase,omitempty"`
	Wave  int             `json:"wave,omitempty"`
	// UID and ResourceVersion are the object's after an Apply wrote it
	// (created, configured, replaced; empty otherwise): what the API
	// server's audit log and the object itself show.
	UID             string `json:"uid,omitempty"`
	ResourceVersion string `json:"resourceVersion,omitempty"`
}

// Result is the outcome of Apply or Diff.
type Result struct {
	Changes []Change `json:"changes"`
	// Health is each object's kstatus after waiting (Apply with Wait only).
	Health []ObjectStatus `json:"health,omitempty"`
	// Hooks are the hook runs of the sync, in the order they ran.
	Hooks []HookRun `json:"hooks,omitempty"`
	// Skipped are rendered objects left out of the sync, and why.
	Skipped []lifecycle.Skipped `json:"skipped,omitempty"`
	// Warnings are things the user should know that did not stop the sync
	// (a skipped Namespace manifest, …).
	Warnings []string `json:"warnings,omitempty"`
}

// HookResult is the outcome of one hook run.
type HookResult string

// The hook results.
const (
	HookSucceeded HookResult = "Succeeded"
	HookFailed    HookResult = "Failed"
)

// HookRun is one hook object created for a sync and what became of it.
type HookRun struct {
	Ref      ObjectRef       `json:"object"`
	Phase    lifecycle.Phase `json:"phase"`
	Wave     int             `json:"wave,omitempty"`
	Result   HookResult      `json:"result"`
	Message  string          `json:"message,omitempty"`
	Duration time.Duration   `json:"duration"`
	// Deleted says the delete policy removed the object afterwards.
	Deleted bool `json:"deleted,omitempty"`
}

// Changed reports whether any object was (or would be) created, configured or pruned.
func (r *Result) Changed() bool {
	for _, c := range r.Changes {
		switch c.Action {
		case ActionCreated, ActionConfigured, ActionPruned, ActionReplaced:
			return true
		}
	}
	return false
}

// Count returns how many changes have action a.
func (r *Result) Count(a Action) int {
	n := 0
	for _, c := range r.Changes {
		if c.Action == a {
			n++
		}
	}
	return n
}

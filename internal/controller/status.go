package controller

import (
	"fmt"
	"slices"
	"strings"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/engine"
)

// Condition reasons (defined in api/v1alpha1, where every reader finds them).
const (
	ReasonSucceeded          = kv1.ReasonSucceeded
	ReasonProgressing        = kv1.ReasonProgressing
	ReasonGitFailed          = kv1.ReasonGitFailed
	ReasonChartFailed        = kv1.ReasonChartFailed
	ReasonArtifactFailed     = kv1.ReasonArtifactFailed
	ReasonRenderFailed       = kv1.ReasonRenderFailed
	ReasonRefused            = kv1.ReasonRefused
	ReasonApplyFailed        = kv1.ReasonApplyFailed
	ReasonHookFailed         = kv1.ReasonHookFailed
	ReasonImmutable          = kv1.ReasonImmutable
	ReasonVerificationFailed = kv1.ReasonVerificationFailed
	ReasonDecryptionFailed   = kv1.ReasonDecryptionFailed
	ReasonInvalidSpec        = kv1.ReasonInvalidSpec
	ReasonOutOfSync          = kv1.ReasonOutOfSync
	ReasonSuspended          = kv1.ReasonSuspended
	ReasonSynced             = kv1.ReasonSynced
	ReasonDriftReverted      = kv1.ReasonDriftReverted
)

const historyLimit = 10

// setReady marks the app Ready (or not) and clears Reconciling/Stalled accordingly.
func setReady(app *kv1.Application, ready bool, reason, msg string) {
	st := metav1.ConditionFalse
	if ready {
		st = metav1.ConditionTrue
	}
	apimeta.SetStatusCondition(&app.Status.Conditions, metav1.Condition{
		Type: kv1.ReadyCondition, Status: st, Reason: reason, Message: msg, ObservedGeneration: app.Generation,
	})
	apimeta.RemoveStatusCondition(&app.Status.Conditions, kv1.ReconcilingCondition)
	apimeta.RemoveStatusCondition(&app.Status.Conditions, kv1.StalledCondition)
}

// setStalled marks a failure that needs a change in Git or the spec to clear.
func setStalled(app *kv1.Application, reason, msg string) {
	setReady(app, false, reason, msg)
	apimeta.SetStatusCondition(&app.Status.Conditions, metav1.Condition{
		Type: kv1.StalledCondition, Status: metav1.ConditionTrue, Reason: reason, Message: msg, ObservedGeneration: app.Generation,
	})
}

// setProgressing marks objects still becoming ready.
func setProgressing(app *kv1.Application, msg string) {
	setReady(app, false, ReasonProgressing, msg)
	apimeta.SetStatusCondition(&app.Status.Conditions, metav1.Condition{
		Type: kv1.ReconcilingCondition, Status: metav1.ConditionTrue, Reason: ReasonProgressing, Message: msg, ObservedGeneration: app.Generation,
	})
}

// health aggregates kstatus results into Argo CD-style health.
func health(statuses []engine.ObjectStatus) kv1.HealthStatus {
	if len(statuses) == 0 {
		return kv1.HealthStatus{Status: kv1.HealthHealthy, Message: "no objects"}
	}
	var failed, missing, progressing []string
	for _, s := range statuses {
		switch s.Status {
		case status.CurrentStatus.String():
		case status.FailedStatus.String():
			failed = append(failed, s.String())
		case status.NotFoundStatus.String():
			missing = append(missing, s.Ref.String())
		default:
			progressing = append(progressing, s.String())
		}
	}
	switch {
	case len(failed) > 0:
		return kv1.HealthStatus{Status: kv1.HealthDegraded, Message: strings.Join(failed, "; ")}
	case len(missing) > 0:
		return kv1.HealthStatus{Status: kv1.HealthMissing, Message: "missing: " + strings.Join(missing, ", ")}
	case len(progressing) > 0:
		return kv1.HealthStatus{Status: kv1.HealthProgressing, Message: strings.Join(progressing, "; ")}
	}
	return kv1.HealthStatus{Status: kv1.HealthHealthy, Message: fmt.Sprintf("%d objects ready", len(statuses))}
}

// addHistory prepends rec, keeping the last historyLimit records.
func addHistory(app *kv1.Application, rec kv1.SyncRecord) {
	app.Status.History = append([]kv1.SyncRecord{rec}, app.Status.History...)
	if len(app.Status.History) > historyLimit {
		app.Status.History = app.Status.History[:historyLimit]
	}
}

// changeSummary is "1 created, 2 configured, 0 pruned".
func changeSummary(res *engine.Result) string {
	if res == nil {
		return ""
	}
	sum := fmt.Sprintf("%d created, %d configured, %d pruned", res.Count(engine.ActionCreated), res.Count(engine.ActionConfigured), res.Count(engine.ActionPruned))
	if n := res.Count(engine.ActionReplaced); n > 0 {
		sum += fmt.Sprintf(", %d replaced", n)
	}
	if len(res.Hooks) > 0 {
		runs := make([]string, len(res.Hooks))
		for i, h := range res.Hooks {
			runs[i] = fmt.Sprintf("%s %s %s", h.Phase, h.Ref, h.Result)
		}
		sum += "; hooks: " + strings.Join(runs, ", ")
	}
	return sum
}

// changedObjects lists what res changed, "Kind/name action", at most
// kv1.MaxRecordedChanges entries (the last one counting the rest).
func changedObjects(res *engine.Result) []string {
	if res == nil {
		return nil
	}
	var out []string
	more := 0
	for _, c := range res.Changes {
		if c.Action == engine.ActionUnchanged {
			continue
		}
		if len(out) == kv1.MaxRecordedChanges-1 {
			more++
			continue
		}
		out = append(out, fmt.Sprintf("%s/%s %s", c.Ref.Kind, c.Ref.Name, c.Action))
	}
	switch {
	case more == 1:
		// The last slot holds the object itself rather than "1 more".
		for _, c := range slices.Backward(res.Changes) {
			if c.Action != engine.ActionUnchanged {
				out = append(out, fmt.Sprintf("%s/%s %s", c.Ref.Kind, c.Ref.Name, c.Action))
				break
			}
		}
	case more > 1:
		out = append(out, fmt.Sprintf("… and %d more", more))
	}
	return out
}

// hookRecords turns the engine's hook runs into history records.
func hookRecords(res *engine.Result) []kv1.HookRecord {
	if res == nil {
		return nil
	}
	var out []kv1.HookRecord
	for _, h := range res.Hooks {
		out = append(out, kv1.HookRecord{Kind: h.Ref.Kind, Name: h.Ref.Name, Phase: string(h.Phase), Wave: h.Wave,
			Result: string(h.Result), Message: h.Message, Duration: h.Duration.String()})
	}
	return out
}

// driftedObjects lists the objects a diff found different.
func driftedObjects(res *engine.Result) []string {
	var out []string
	for _, c := range res.Changes {
		switch c.Action {
		case engine.ActionCreated, engine.ActionConfigured, engine.ActionPruned, engine.ActionReplaced:
			out = append(out, c.Ref.String()+" "+string(c.Action))
		}
	}
	return out
}

// withheldDiff is status.sync.diff of an Application with spec.decryption.
const withheldDiff = "# diff withheld: spec.decryption is set, so the rendered objects may hold values decrypted from SOPS files" +
	" (a ConfigMap, a Deployment's env from Helm values), and whoever may read this Application would read them;" +
	" status.sync.drifted names the objects. Whoever holds the key sees the diff with `keyless diff --decryption-key-file`.\n"

// driftDiff joins the diffs of the objects a diff found different, whole
// objects only, within kv1.MaxSyncDiffBytes; the note at the end says how
// many were left out and where to see them. The diff of an Application
// with spec.decryption is withheld whatever the kinds: the engine masks
// only Secrets' values, and a decrypted value may land in any field of any
// kind. It is decided by spec.decryption, not by what one render
// decrypted, so it holds whichever render (cached or not) the diff came
// from; a render that decrypted nothing is withheld too.
func driftDiff(res *engine.Result, app *kv1.Application) string {
	if app.Spec.Decryption != nil {
		return withheldDiff
	}
	var b strings.Builder
	left := 0
	for _, c := range res.Changes {
		if c.Diff == "" {
			continue
		}
		if left > 0 || b.Len()+len(c.Diff) > kv1.MaxSyncDiffBytes-256 {
			left++
			continue
		}
		b.WriteString(c.Diff)
	}
	if left > 0 {
		fmt.Fprintf(&b, "# … the diff of %d more object(s) is left out (status.sync.diff holds %d KiB at most): run `keyless diff` on the repository with -n %s\n",
			left, kv1.MaxSyncDiffBytes>>10, app.Namespace)
	}
	return b.String()
}

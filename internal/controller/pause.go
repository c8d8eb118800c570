package controller

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/engine"
	"github.com/keyless-cd/keyless/internal/ledger"
)

// Break-glass (#39): `keyless pause APP --for 30m --reason INC-123` sets
// kv1.PauseAnnotation; while it is in force self-heal stops (drift is
// reported, with the field managers that made it, not reverted), and at
// its expiry the drift is reverted to Git. A pause has an expiry, always
// (kv1.MaxPause at most).

// trackPause brings status.pause in line with the annotation at now: the
// pause in force (an Event when it is new), or nil. It returns the pause
// in force, and whether one just ended (its drift is to be reverted).
func (r *ApplicationReconciler) trackPause(app *kv1.Application, now time.Time) (pause *kv1.Pause, ended bool) {
	pause = app.PausedAt(now)
	prev := app.Status.Pause
	switch {
	case pause == nil && prev != nil:
		return nil, true
	case pause == nil:
		return nil, false
	}
	st := &kv1.PauseStatus{Until: metav1.NewTime(pause.Until), By: pause.By, Reason: pause.Reason}
	if prev != nil && prev.By == pause.By && prev.Reason == pause.Reason {
		st.Drift = prev.Drift
	} else {
		r.recorder.Eventf(app, nil, corev1.EventTypeNormal, kv1.ReasonPaused, "Pause", "self-heal paused by %s until %s: %s",
			pause.By, pause.Until.UTC().Format(time.RFC3339), pause.Reason)
		r.writeLedgerEvent(app, ledger.Record{Kind: ledger.KindPause, By: pause.By, Reason: pause.Reason, Until: pause.Until.UTC()})
	}
	app.Status.Pause = st
	return pause, false
}

// recordPausedDrift puts the drift a paused Application's diff found in
// status.pause, each object with the field managers (other than keyless's
// own) that hold fields of it: who made the change, as far as the object
// says (the API server's audit log says it for sure).
func (r *ApplicationReconciler) recordPausedDrift(ctx context.Context, app *kv1.Application, eng *engine.Engine, diff *engine.Result) {
	if app.Status.Pause == nil {
		return
	}
	var drift []string
	for _, c := range diff.Changes {
		switch c.Action {
		case engine.ActionCreated, engine.ActionConfigured, engine.ActionPruned, engine.ActionReplaced:
		default:
			continue
		}
		line := c.Ref.String() + " " + string(c.Action)
		if managers := otherManagers(ctx, eng, c.Ref); len(managers) > 0 {
			line += " (by " + strings.Join(managers, ", ") + ")"
		}
		drift = append(drift, line)
		if len(drift) == kv1.MaxRecordedChanges {
			break
		}
	}
	app.Status.Pause.Drift = drift
}

// otherManagers are the field managers of ref's live object that are not
// keyless's and not a status writer.
func otherManagers(ctx context.Context, eng *engine.Engine, ref engine.ObjectRef) []string {
	live := ref.Unstructured()
	if err := eng.Client().Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, live); err != nil {
		return nil
	}
	var out []string
	for _, m := range live.GetManagedFields() {
		if m.Subresource != "" || m.Manager == engine.FieldManager || slices.Contains(out, m.Manager) {
			continue
		}
		out = append(out, m.Manager)
	}
	return out
}

// pauseNote is what a paused Application's OutOfSync message adds.
func pauseNote(app *kv1.Application) string {
	p := app.Status.Pause
	if p == nil {
		return ""
	}
	return fmt.Sprintf(" (self-heal paused by %s until %s: %s; reverted to Git then)", p.By, p.Until.UTC().Format(time.RFC3339), p.Reason)
}

package controller

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/engine"
)

// operationReporter returns the engine's OnStep callback: while a sync with
// phases or waves runs, status.operation says which phase and wave run and
// which objects (hooks) it waits for. Each step is written at once with its
// own patch, so `keyless get apps` and kubectl see it during the sync.
func (r *ApplicationReconciler) operationReporter(ctx context.Context, app *kv1.Application) func(engine.StepProgress) {
	started := metav1.Now()
	return func(p engine.StepProgress) {
		op := &kv1.OperationStatus{Phase: string(p.Phase), Wave: p.Wave, StartedAt: started}
		for _, ref := range p.Waiting {
			op.Waiting = append(op.Waiting, ref.String())
		}
		r.writeOperation(ctx, app, op)
	}
}

// endOperation clears status.operation once the sync is over.
func (r *ApplicationReconciler) endOperation(ctx context.Context, app *kv1.Application) {
	if app.Status.Operation != nil {
		r.writeOperation(ctx, app, nil)
	}
}

// writeOperation patches status.operation alone (a JSON merge patch of that
// field), leaving the rest of the status to the reconcile's final write.
func (r *ApplicationReconciler) writeOperation(ctx context.Context, app *kv1.Application, op *kv1.OperationStatus) {
	snapshot := app.DeepCopy()
	snapshot.Status.Operation = op
	patch := client.MergeFrom(app.DeepCopy())
	if err := r.client.Status().Patch(ctx, snapshot, patch); err != nil {
		log.FromContext(ctx).Info("could not write the sync's progress", "error", err.Error())
		return
	}
	r.stale.wrote(client.ObjectKeyFromObject(app), app.ResourceVersion)
	app.Status.Operation = op
	app.ResourceVersion = snapshot.ResourceVersion
}

// resultWarnings are the warnings of a sync result (none for nil).
func resultWarnings(res *engine.Result) []string {
	if res == nil {
		return nil
	}
	return res.Warnings
}

package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/readset"
)

// A render is keyed by what it read. The render child reports every path
// of the checkout it used (render.Result.Inputs: files read, paths looked
// at, folders listed or loaded whole); the controller keeps their values
// at the commit rendered (readset.Values: Git blob and tree hashes, with
// the symlinks on the way). At a new commit it computes the same values
// from the Git objects alone: all equal, the render before is the render
// of this commit too, and when that render is what runs, the commit costs
// the Application no render, no dry run and no write (statusOnly).

// maxChangedListed bounds status.render.changed.
const maxChangedListed = 10

// renderOutcome is how render got its objects, for status.render.
type renderOutcome struct {
	// cached: the last render of this very commit (a periodic pass, a
	// drift revert, a retry).
	cached bool
	// rendered: rendered now, at renderedAt.
	rendered bool
	// reused: a new commit that left every input as it was at
	// renderedAt; from is the commit the render was known good for.
	reused bool
	from   string
	// renderedAt is the commit the objects were rendered at.
	renderedAt string
	// inputs is the number of inputs the render is keyed by (0: none).
	inputs int
	// reason says why the commit was rendered or not; changed names the
	// inputs that moved.
	reason  string
	changed []string
}

// reuseRender returns app's last render when it was made with the same
// options and none of its inputs differs at sha (the outcome says so), or
// nil objects and an outcome saying why the commit has to be rendered.
// Nothing is checked out for it: the values come from the Git objects,
// so a commit that changes none of app's inputs writes nothing to disk on
// its behalf. A tree the checkout refuses (an escaping symlink, too many
// files) fails the Applications that render that commit; one whose inputs
// it left alone keeps its objects and moves on, as it would have had the
// refused entries never been pushed.
func (r *ApplicationReconciler) reuseRender(ctx context.Context, app types.NamespacedName, key string, source openSource, sha string) ([]*unstructured.Unstructured, renderOutcome) {
	e, ok := r.renders.lookup(app, key)
	switch {
	case !ok && r.renders.has(app):
		return nil, renderOutcome{reason: "render options changed (spec, cluster API versions)"}
	case !ok:
		return nil, renderOutcome{reason: "no render kept (the first since the controller started, or the last decrypted SOPS files)"}
	case e.inputs == nil:
		return nil, renderOutcome{reason: "not keyed by its inputs (a chart, spec.sources with a ref, a render that read outside the checkout)"}
	}
	values := e.next
	if e.nextRevision != sha || values == nil {
		var err error
		if values, err = source.inputValues(sha, e.inputs); err != nil {
			if !errors.Is(err, readset.ErrNotKeyable) {
				log.FromContext(ctx).Info("comparing render inputs failed, rendering", "revision", sha, "error", err.Error())
			}
			return nil, renderOutcome{reason: "inputs could not be compared: " + err.Error()}
		}
	}
	if !slices.Equal(values, e.values) {
		changed := readset.Changed(e.inputs, e.values, values, maxChangedListed)
		return nil, renderOutcome{reason: "inputs changed: " + strings.Join(changed, ", "), changed: changed}
	}
	objs, ok := e.objects()
	if !ok {
		return nil, renderOutcome{reason: "cached render unreadable"}
	}
	r.renders.advance(app, key, e.revision, sha)
	return objs, renderOutcome{reused: true, from: e.revision, renderedAt: e.renderedAt, inputs: len(e.inputs),
		reason: "inputs unchanged since " + kv1.ShortSHA(e.renderedAt)}
}

// inputValues are the values at sha of a render's inputs, or nil for both
// when the render cannot be keyed by them.
func (r *ApplicationReconciler) inputValues(ctx context.Context, source openSource, sha string, inputs []readset.Input) ([]readset.Input, []string) {
	if inputs == nil {
		return nil, nil
	}
	values, err := source.inputValues(sha, inputs)
	if err != nil {
		if !errors.Is(err, readset.ErrNotKeyable) {
			log.FromContext(ctx).Info("keying a render by its inputs failed", "revision", sha, "error", err.Error())
		}
		return nil, nil
	}
	return inputs, values
}

// statusOnly says whether this sync is only a new commit that left app's
// inputs alone while the render of its last applied revision runs: then
// nothing is dry-run or written, and the status moves to the new commit.
// A request, a spec change, drift or a retry always syncs.
func statusOnly(app *kv1.Application, trigger string, plan syncPlan, out renderOutcome) bool {
	return out.reused && trigger == TriggerRevision && plan.Apply &&
		app.Status.LastAppliedRevision == out.from &&
		app.Status.Sync.Status == kv1.SyncStatusSynced &&
		(app.Status.Approval == nil || app.Status.Approval.Pending == nil)
}

// recordUnchanged moves app to sha with no write to its objects: the
// commit changed none of the files its render read.
func (r *ApplicationReconciler) recordUnchanged(ctx context.Context, app *kv1.Application, sha string, out renderOutcome, interval time.Duration) (ctrl.Result, error) {
	r.applies.yield(ctx) // the status write waits for a running apply (yield.go)
	app.Status.LastAppliedRevision = sha
	app.Status.LastAttemptedRevision = sha
	app.Status.ObservedGeneration = app.Generation
	app.Status.Sync = kv1.SyncStatus{Status: kv1.SyncStatusSynced, Revision: sha}
	setRenderStatus(app, out)
	r.metrics.rendersSkipped.Inc()
	return r.refreshHealth(ctx, app, interval)
}

// setRenderStatus writes status.render from a render's outcome (a cached
// render of the same commit leaves it as it was).
func setRenderStatus(app *kv1.Application, out renderOutcome) {
	if out.cached {
		return
	}
	app.Status.Render = &kv1.RenderStatus{Revision: out.renderedAt, Inputs: out.inputs, Reason: out.reason, Changed: out.changed}
	if out.rendered && out.reason == "" {
		app.Status.Render.Reason = fmt.Sprintf("rendered at %s", kv1.ShortSHA(out.renderedAt))
	}
}

package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/fluxcd/pkg/ssa"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyless-cd/keyless/internal/lifecycle"
)

// applyPlan runs a sync with phases and waves:
//
//  1. a server-side dry-run of every object and hook of every phase, so
//     nothing is written when any of them would be refused;
//  2. PreSync, Sync and PostSync, wave by wave: each wave's ordinary objects
//     are applied (recreated first when an immutable change is allowed to
//     replace them), its hooks created, and the next wave starts only once
//     all of them are healthy (a Job Complete);
//  3. prune after the Sync phase, before PostSync;
//  4. when a step fails, the SyncFail hooks run and the sync stops: the
//     inventory keeps what was applied so far and what was there before.
func (e *Engine) applyPlan(ctx context.Context, p *prepared, opts ApplyOptions) (*Result, error) {
	res := &Result{}
	replace, err := e.validatePlan(ctx, p.plan)
	if err != nil {
		if nsErr := missingNamespace(err, opts.Namespace); nsErr != nil {
			return nil, nsErr
		}
		return nil, err
	}
	refs := refsOf(p.plan.Objects())
	// Hooks that were ordinary objects before (fixed names) are the hook
	// run's to replace, not prune's to delete.
	hookRefs := map[string]bool{}
	for _, h := range p.plan.Hooks() {
		if h.GetName() != "" {
			hookRefs[RefOf(h).ID().String()] = true
		}
	}
	var applied []ObjectRef
	pruned := false
	for i, step := range p.plan.Steps {
		if step.Phase == lifecycle.PhasePostSync && !pruned {
			pruned = true
			if err := e.pruneAndSave(ctx, res, p.old, refs, hookRefs, opts); err != nil {
				return res, err
			}
		}
		last := i == len(p.plan.Steps)-1
		stepErr := e.runStep(ctx, step, replace, !last, opts, res)
		applied = append(applied, refsOf(step.Objects)...)
		if stepErr != nil {
			fail := e.runSyncFail(ctx, p.plan.SyncFail, opts, res)
			var he *HookError
			if errors.As(stepErr, &he) {
				he.SyncFail = fail
			}
			keep := append(p.old.Entries[:len(p.old.Entries):len(p.old.Entries)], applied...)
			if saveErr := saveInventory(ctx, opts.Inventory, NewInventory(keep)); saveErr != nil {
				return res, errors.Join(stepErr, saveErr)
			}
			return res, stepErr
		}
	}
	if !pruned {
		if err := e.pruneAndSave(ctx, res, p.old, refs, hookRefs, opts); err != nil {
			return res, err
		}
	}
	return res, e.waitIfAsked(ctx, res, refs, opts)
}

// validatePlan dry-runs every ordinary object (server-side apply) and every
// hook (create) of the plan. It returns the objects to recreate: those whose
// change the API server refuses as immutable and that opt into Replace.
func (e *Engine) validatePlan(ctx context.Context, plan *lifecycle.Plan) (map[string]bool, error) {
	replace := map[string]bool{}
	var errs []error
	roles := rolesOf(plan.Objects())
	for _, o := range plan.Objects() {
		r := RefOf(o)
		_, _, _, err := e.manager.Diff(ctx, o.DeepCopy(), ssa.DefaultDiffOptions())
		switch {
		case err == nil, e.awaitsRoleInSet(ctx, o, err, roles):
		case isImmutable(err) && plan.Of[o].Replace:
			replace[r.ID().String()] = true
		case isImmutable(err):
			return nil, &ImmutableError{Ref: r, Err: err}
		default:
			errs = append(errs, fmt.Errorf("%s: %w", r, err))
		}
	}
	for _, h := range plan.Hooks() {
		if err := e.dryRunHook(ctx, h); err != nil {
			errs = append(errs, fmt.Errorf("hook %s: %w", RefOf(h), err))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w, nothing was applied:\n  %w", ErrDryRun, errors.Join(errs...))
	}
	return replace, nil
}

// dryRunHook asks the API server whether h could be created (an existing
// object of the same name is fine: its delete policy replaces it).
func (e *Engine) dryRunHook(ctx context.Context, h *unstructured.Unstructured) error {
	c := h.DeepCopy()
	err := e.client.Create(ctx, c, client.DryRunAll, client.FieldOwner(e.fieldManager))
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// runStep applies one wave: replaced objects are deleted first, ordinary
// objects applied, hooks created; then, when wait is set or the step has
// hooks, everything is waited for and the hooks' delete policies applied.
func (e *Engine) runStep(ctx context.Context, step lifecycle.Step, replace map[string]bool, wait bool, opts ApplyOptions, res *Result) error {
	e.report(opts, step, nil)
	if len(step.Objects) > 0 {
		for _, o := range step.Objects {
			if replace[RefOf(o).ID().String()] {
				if err := e.deleteAndWait(ctx, RefOf(o), opts); err != nil {
					return fmt.Errorf("replacing %s: %w", RefOf(o), err)
				}
			}
		}
		cs, err := e.manager.ApplyAll(ctx, step.Objects, e.applyOptions())
		if err != nil {
			return e.applyError(err, opts.Namespace)
		}
		res.Changes = append(res.Changes, e.changesOf(cs, step.Objects, replace, &step)...)
	}
	hooks, err := e.createHooks(ctx, step, opts)
	if err != nil {
		return err
	}
	if len(hooks) == 0 && !wait {
		return nil
	}
	refs := refsOf(step.Objects)
	for _, h := range hooks {
		refs = append(refs, h.run.Ref)
	}
	e.report(opts, step, refs)
	statuses, waitErr := e.Wait(ctx, refs, WaitOptions{Timeout: opts.StepTimeout, Interval: opts.WaitInterval, Progress: opts.Progress, Health: opts.Health})
	failed := e.finishHooks(ctx, hooks, statuses, res)
	if failed != nil {
		return failed
	}
	if waitErr != nil {
		return &StepError{Phase: step.Phase, Wave: step.Wave, Err: waitErr}
	}
	return nil
}

// runHookSteps runs hook-only steps (SyncFail, PreDelete, PostDelete) and
// returns their runs; a failure there is recorded in the runs, not returned.
// A hook that could not be created is a failed run, so a PreDelete hook the
// deployer may not create stops the deletion as a failing one does.
func (e *Engine) runHookSteps(ctx context.Context, steps []lifecycle.Step, opts ApplyOptions, res *Result) []HookRun {
	start := len(res.Hooks)
	for _, step := range steps {
		hooks, err := e.createHooks(ctx, step, opts)
		if err != nil {
			notCreated := step.Hooks[len(hooks)]
			res.Hooks = append(res.Hooks, HookRun{Ref: RefOf(notCreated), Phase: step.Phase, Wave: step.Wave, Result: HookFailed, Message: err.Error()})
		}
		refs := make([]ObjectRef, len(hooks))
		for i, h := range hooks {
			refs[i] = h.run.Ref
		}
		e.report(opts, step, refs)
		statuses, _ := e.Wait(ctx, refs, WaitOptions{Timeout: opts.StepTimeout, Interval: opts.WaitInterval, Progress: opts.Progress, Health: opts.Health})
		_ = e.finishHooks(ctx, hooks, statuses, res)
	}
	return res.Hooks[start:]
}

func (e *Engine) report(opts ApplyOptions, step lifecycle.Step, waiting []ObjectRef) {
	if opts.OnStep != nil {
		opts.OnStep(StepProgress{Phase: step.Phase, Wave: step.Wave, Waiting: waiting})
	}
}

// finishHooks records each hook's result from statuses, applies its delete
// policy and returns a *HookError for the first hook that failed.
func (e *Engine) finishHooks(ctx context.Context, hooks []*hookRun, statuses []ObjectStatus, res *Result) error {
	byRef := make(map[ObjectRef]ObjectStatus, len(statuses))
	for _, s := range statuses {
		byRef[s.Ref] = s
	}
	var first error
	for _, h := range hooks {
		st := byRef[h.run.Ref]
		h.run.Duration = time.Since(h.started).Round(time.Millisecond)
		h.run.Result = HookSucceeded
		if st.Status != status.CurrentStatus.String() {
			h.run.Result = HookFailed
			h.run.Message = st.Status
			if st.Message != "" {
				h.run.Message += ": " + st.Message
			}
		}
		policy := lifecycle.DeleteHookSucceeded
		if h.run.Result == HookFailed {
			policy = lifecycle.DeleteHookFailed
		}
		if h.lc.Deletes(policy) {
			if err := e.deleteHook(ctx, h.run.Ref); err != nil {
				res.Warnings = append(res.Warnings, fmt.Sprintf("deleting hook %s (%s): %v", h.run.Ref, policy, err))
			} else {
				h.run.Deleted = true
			}
		}
		res.Hooks = append(res.Hooks, h.run)
		if h.run.Result == HookFailed && first == nil {
			first = &HookError{Hook: h.run.Ref, Phase: h.run.Phase, Status: h.run.Message}
		}
	}
	return first
}

// deleteAll runs a whole set's removal: PreDelete hooks, prune of every
// object of the inventory, PostDelete hooks.
func (e *Engine) deleteAll(ctx context.Context, p *prepared, opts ApplyOptions) (*Result, error) {
	res := &Result{}
	e.runHookSteps(ctx, p.plan.PreDelete, opts, res)
	for _, h := range res.Hooks {
		if h.Result == HookFailed {
			return res, &HookError{Hook: h.Ref, Phase: h.Phase, Status: h.Message}
		}
	}
	if err := e.pruneAndSave(ctx, res, p.old, nil, nil, opts); err != nil {
		return res, err
	}
	e.runHookSteps(ctx, p.plan.PostDelete, opts, res)
	return res, nil
}

package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fluxcd/pkg/ssa"
	ssaerrors "github.com/fluxcd/pkg/ssa/errors"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/keyless-cd/keyless/internal/lifecycle"
)

// ErrEmpty is returned when a render has no objects and AllowEmpty is off.
var ErrEmpty = errors.New("the render produced no objects; refusing to apply it, since that would prune everything (allow it explicitly with --allow-empty / syncPolicy.automated.allowEmpty)")

// ApplyOptions configure Apply. Namespace and Name are required.
type ApplyOptions struct {
	// Namespace is the only namespace objects may be written to.
	Namespace string
	// Name identifies the inventory (an Application's name, or --name).
	Name string
	// Inventory stores the inventory. Default: ConfigMapStore in Namespace.
	Inventory InventoryStore
	// Prune deletes objects of the last inventory that left the render.
	Prune bool
	// AllowEmpty lets an empty render apply (and so prune everything).
	AllowEmpty bool
	// DryRun reports what would change (with diffs) and writes nothing.
	DryRun bool
	// SkipHooks leaves hooks out: a self-heal revert re-applies what
	// drifted and runs no hook. Waves are still applied in order.
	SkipHooks bool
	// ReplaceAll lets every object be recreated when the API server refuses
	// its change as immutable (an Application's syncOptions Replace=true), as
	// the per-object Replace=true annotation does.
	ReplaceAll bool
	// AllowedSubjects are the Users, Groups and other namespaces'
	// ServiceAccounts a rendered RoleBinding may name (the Application's
	// spec.rbac.allowedSubjects). Default none: a binding from Git names
	// only its namespace's own ServiceAccounts.
	AllowedSubjects []rbacv1.Subject
	// TrustRBAC skips the guard on Roles and RoleBindings: the objects are
	// applied with a person's own identity (`keyless install`, the cluster
	// admin applying keyless's own Roles; `keyless apply`), so the API
	// server's escalation checks on that identity decide, as for kubectl.
	// The controller and `keyless deploy` (a pipeline's identity, acting
	// for whoever pushed) never set it. Default false.
	TrustRBAC bool
	// Wait, when positive, waits up to this long for every object to be Current.
	Wait time.Duration
	// StepTimeout bounds how long each wave (its objects healthy, its hooks
	// finished) may take before the sync stops. Default 5m.
	StepTimeout time.Duration
	// MaxSteps refuses (ErrRefused, before any write) a plan with more
	// waves than this (phases × sync waves, SyncFail included). Default 0:
	// no cap; the controller sets its --max-waves.
	MaxSteps int
	// WaitInterval is the status poll interval. Default 500ms.
	WaitInterval time.Duration
	// Progress, when set, receives wait progress.
	Progress func(ObjectStatus)
	// Health, when set, decides the status of the objects it knows before
	// kstatus in every wait (an Application's CEL health, #37).
	Health Health
	// OnStep, when set, is told each time a sync with phases or waves
	// starts a step or starts waiting for its hooks.
	OnStep func(StepProgress)
}

// StepProgress is where a phased sync is: the phase and wave running and
// the objects it waits for.
type StepProgress struct {
	Phase   lifecycle.Phase
	Wave    int
	Waiting []ObjectRef
}

// DefaultStepTimeout is ApplyOptions.StepTimeout's default.
const DefaultStepTimeout = 5 * time.Minute

func (o *ApplyOptions) defaults(e *Engine) error {
	if o.Namespace == "" {
		return ErrNoNamespace
	}
	if err := ValidateInventoryName(o.Name); err != nil {
		return err
	}
	if o.Inventory == nil {
		o.Inventory = &ConfigMapStore{Client: e.client, Namespace: o.Namespace, Name: o.Name}
	}
	if o.WaitInterval == 0 {
		o.WaitInterval = 500 * time.Millisecond
	}
	if o.StepTimeout == 0 {
		o.StepTimeout = DefaultStepTimeout
	}
	return nil
}

// Apply converges the namespace to objs: guards first (nothing is written if
// any object is refused or the render is empty), then a server-side dry-run of
// the whole set, then server-side apply of what changed, then prune and wait.
// An unchanged set makes no write at all. A set with hooks or waves runs
// phase by phase and wave by wave (see applyPlan); one without is applied in
// one go, staged as ssa.ApplyAllStaged does.
func (e *Engine) Apply(ctx context.Context, objs []*unstructured.Unstructured, opts ApplyOptions) (*Result, error) {
	if err := opts.defaults(e); err != nil {
		return nil, err
	}
	if opts.DryRun {
		return e.Diff(ctx, objs, DiffOptions{Namespace: opts.Namespace, Name: opts.Name, Inventory: opts.Inventory, Prune: opts.Prune, AllowEmpty: opts.AllowEmpty, SkipHooks: opts.SkipHooks, ReplaceAll: opts.ReplaceAll, AllowedSubjects: opts.AllowedSubjects, TrustRBAC: opts.TrustRBAC})
	}
	p, err := e.prepare(ctx, objs, prepareOptions{namespace: opts.Namespace, name: opts.Name, inventory: opts.Inventory, allowEmpty: opts.AllowEmpty, skipHooks: opts.SkipHooks, replaceAll: opts.ReplaceAll, allowedSubjects: opts.AllowedSubjects, trustRBAC: opts.TrustRBAC})
	if err != nil {
		return nil, err
	}
	if err := checkSteps(p.plan, opts.MaxSteps); err != nil {
		return nil, err
	}
	if err := e.checkOwners(ctx, named(p.plan), opts.Name); err != nil {
		return nil, err
	}
	var res *Result
	switch {
	case len(p.plan.Objects()) == 0 && opts.Prune && p.plan.HasDeleteHooks():
		res, err = e.deleteAll(ctx, p, opts)
	case p.plan.Simple():
		res, err = e.applySimple(ctx, p, opts)
	default:
		res, err = e.applyPlan(ctx, p, opts)
	}
	if res != nil {
		res.Skipped = p.plan.Skipped
		res.Warnings = append(p.warnings, res.Warnings...)
	}
	return res, err
}

// applySimple applies a set of ordinary objects in one go.
func (e *Engine) applySimple(ctx context.Context, p *prepared, opts ApplyOptions) (*Result, error) {
	objs := p.plan.Objects()
	cs, err := e.manager.ApplyAllStaged(ctx, objs, e.applyOptions())
	if err != nil {
		return nil, e.applyError(err, opts.Namespace)
	}
	res := &Result{}
	refs := refsOf(objs)
	res.Changes = e.changesOf(cs, objs, nil, nil)
	if err := e.pruneAndSave(ctx, res, p.old, refs, nil, opts); err != nil {
		return res, err
	}
	return res, e.waitIfAsked(ctx, res, refs, opts)
}

// waitIfAsked waits for refs when opts.Wait is set, recording their health in res.
func (e *Engine) waitIfAsked(ctx context.Context, res *Result, refs []ObjectRef, opts ApplyOptions) error {
	if opts.Wait <= 0 || len(refs) == 0 {
		return nil
	}
	health, err := e.Wait(ctx, refs, WaitOptions{Timeout: opts.Wait, Interval: opts.WaitInterval, Progress: opts.Progress, Health: opts.Health})
	res.Health = health
	return err
}

// applyError names what went wrong with an apply: a missing namespace, an
// immutable field, or the API server's refusal.
func (e *Engine) applyError(err error, namespace string) error {
	if nsErr := missingNamespace(err, namespace); nsErr != nil {
		return nsErr
	}
	if isImmutable(err) {
		var dr *ssaerrors.DryRunErr
		ref := ObjectRef{}
		if errors.As(err, &dr) && dr.InvolvedObject() != nil {
			ref = RefOf(dr.InvolvedObject())
		}
		return &ImmutableError{Ref: ref, Err: err}
	}
	return fmt.Errorf("apply: %w", err)
}

// pruneAndSave prunes (or reports as stale) what left the render and saves
// the inventory: refs, plus what could not be pruned. keepOut are objects
// of the old inventory that must not be pruned (hooks that used to be
// ordinary objects, now recreated by their hook run).
func (e *Engine) pruneAndSave(ctx context.Context, res *Result, old *Inventory, refs []ObjectRef, keepOut map[string]bool, opts ApplyOptions) error {
	var stale []ObjectRef
	for _, r := range old.Minus(NewInventory(refs)) {
		if !keepOut[r.ID().String()] {
			stale = append(stale, r)
		}
	}
	keep := refs
	if opts.Prune {
		pruned, failed, err := e.prune(ctx, stale, opts.Name)
		res.Changes = append(res.Changes, pruned...)
		keep = append(keep, failed...)
		if err != nil {
			if saveErr := saveInventory(ctx, opts.Inventory, NewInventory(keep)); saveErr != nil {
				return errors.Join(err, saveErr)
			}
			return err
		}
	} else {
		for _, r := range stale {
			res.Changes = append(res.Changes, Change{Ref: r, Action: ActionStale})
		}
		keep = append(keep, stale...)
	}
	return opts.Inventory.Save(ctx, NewInventory(keep))
}

// changesOf maps ssa's change set onto objs' changes; replaced objects are
// reported as such, and step (when set) places each in its phase and wave.
func (e *Engine) changesOf(cs *ssa.ChangeSet, objs []*unstructured.Unstructured, replaced map[string]bool, step *lifecycle.Step) []Change {
	byID := make(map[string]*unstructured.Unstructured, len(objs))
	for _, o := range objs {
		byID[RefOf(o).ID().String()] = o
	}
	var out []Change
	for _, entry := range cs.Entries {
		o, ok := byID[entry.ObjMetadata.String()]
		if !ok {
			continue
		}
		r := RefOf(o)
		c := Change{Ref: r, Action: ssaAction(entry.Action)}
		if w, ok := e.written.take(r); ok && (c.Action == ActionCreated || c.Action == ActionConfigured) {
			c.UID, c.ResourceVersion = string(w.uid), w.resourceVersion
		}
		if replaced[r.ID().String()] {
			c.Action = ActionReplaced
		}
		if step != nil {
			c.Phase, c.Wave = step.Phase, step.Wave
		}
		out = append(out, c)
	}
	return out
}

func refsOf(objs []*unstructured.Unstructured) []ObjectRef {
	refs := make([]ObjectRef, len(objs))
	for i, o := range objs {
		refs[i] = RefOf(o)
	}
	return refs
}

// named returns the plan's objects that have a name: every ordinary object
// and the hooks without generateName (their live copy is replaced).
func named(p *lifecycle.Plan) []*unstructured.Unstructured {
	out := p.Objects()
	for _, h := range p.Hooks() {
		if h.GetName() != "" {
			out = append(out, h)
		}
	}
	return out
}

// missingNamespace turns "namespaces X not found" into one clear error, or nil.
func missingNamespace(err error, namespace string) error {
	var status *apierrors.StatusError
	if errors.As(err, &status) && apierrors.IsNotFound(status) {
		if d := status.Status().Details; d != nil && d.Kind == "namespaces" && d.Name == namespace {
			return fmt.Errorf("namespace %q does not exist: keyless never creates namespaces; ask a cluster admin to create it (and the deployer's Role in it), nothing was applied", namespace)
		}
	}
	return nil
}

// applyOptions are the ssa options keyless applies with: take over fields
// that kubectl (apply, edit, create) or the other keyless writer (the
// controller or the CLI) set, so drift is reverted and no stale owner keeps
// a field Git removed.
func (e *Engine) applyOptions() ssa.ApplyOptions {
	other := CLIFieldManager
	if e.fieldManager == CLIFieldManager {
		other = FieldManager
	}
	o := ssa.DefaultApplyOptions()
	o.CustomStageKinds = stagedKinds
	o.Cleanup = ssa.ApplyCleanupOptions{
		Annotations: []string{"kubectl.kubernetes.io/last-applied-configuration"},
		FieldManagers: []ssa.FieldManager{
			{Name: "kubectl", OperationType: "Apply"},
			{Name: "kubectl", OperationType: "Update"},
			{Name: "before-first-apply", OperationType: "Update"},
			{Name: other, OperationType: "Apply"},
		},
		Exclusions: map[string]string{PruneAnnotation: PruneDisabled},
	}
	return o
}

func ssaAction(a ssa.Action) Action {
	switch a {
	case ssa.CreatedAction:
		return ActionCreated
	case ssa.ConfiguredAction:
		return ActionConfigured
	case ssa.DeletedAction:
		return ActionPruned
	case ssa.SkippedAction:
		return ActionPruneSkipped
	default:
		return ActionUnchanged
	}
}

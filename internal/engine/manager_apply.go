package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fluxcd/pkg/ssa"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
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
)

// Change is one object's outcome.
type Change struct {
	Ref    ObjectRef `json:"object"`
	Action Action    `json:"action"`
	// Diff is a unified YAML diff (Diff and dry runs only).
	Diff string `json:"diff,omitempty"`
}

// Result is the outcome of Apply or Diff.
type Result struct {
	Changes []Change `json:"changes"`
	// Health is each object's kstatus after waiting (Apply with Wait only).
	Health []ObjectStatus `json:"health,omitempty"`
}

// Changed reports whether any object was (or would be) created, configured or pruned.
func (r *Result) Changed() bool {
	for _, c := range r.Changes {
		switch c.Action {
		case ActionCreated, ActionConfigured, ActionPruned:
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
	// Wait, when positive, waits up to this long for every object to be Current.
	Wait time.Duration
	// WaitInterval is the status poll interval. Default 500ms.
	WaitInterval time.Duration
	// Progress, when set, receives wait progress.
	Progress func(ObjectStatus)
}

func (o *ApplyOptions) defaults(e *Engine) error {
	if o.Namespace == "" {
		return errors.New("a target namespace is required (-n/--namespace)")
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
	return nil
}

// prepare copies objs, enforces the guards and labels them. Nothing is written.
func (e *Engine) prepare(objs []*unstructured.Unstructured, namespace, name string, allowEmpty bool) ([]*unstructured.Unstructured, error) {
	if len(objs) == 0 && !allowEmpty {
		return nil, ErrEmpty
	}
	out := make([]*unstructured.Unstructured, len(objs))
	for i, o := range objs {
		out[i] = o.DeepCopy()
	}
	if err := Confine(out, namespace, e.mapper); err != nil {
		return nil, err
	}
	if err := refuseIdentityTheft(out, e.protected); err != nil {
		return nil, err
	}
	setManagedLabels(out, name)
	return out, nil
}

// Apply converges the namespace to objs: guards first (nothing is written if
// any object is refused or the render is empty), then a server-side dry-run of
// the whole set, then server-side apply of what changed (staged as
// ssa.ApplyAllStaged does), then prune and wait. An unchanged set makes no
// write at all.
func (e *Engine) Apply(ctx context.Context, objs []*unstructured.Unstructured, opts ApplyOptions) (*Result, error) {
	if err := opts.defaults(e); err != nil {
		return nil, err
	}
	if opts.DryRun {
		return e.Diff(ctx, objs, DiffOptions{Namespace: opts.Namespace, Name: opts.Name, Inventory: opts.Inventory, Prune: opts.Prune, AllowEmpty: opts.AllowEmpty})
	}
	objs, err := e.prepare(objs, opts.Namespace, opts.Name, opts.AllowEmpty)
	if err != nil {
		return nil, err
	}
	if err := e.checkOwners(ctx, objs, opts.Name); err != nil {
		return nil, err
	}
	old, err := opts.Inventory.Load(ctx)
	if err != nil {
		return nil, err
	}
	cs, err := e.manager.ApplyAllStaged(ctx, objs, e.applyOptions())
	if err != nil {
		if nsErr := missingNamespace(err, opts.Namespace); nsErr != nil {
			return nil, nsErr
		}
		return nil, fmt.Errorf("apply: %w", err)
	}
	res := &Result{}
	refs := make([]ObjectRef, 0, len(objs))
	byID := map[string]ObjectRef{}
	for _, o := range objs {
		r := RefOf(o)
		refs = append(refs, r)
		byID[r.ID().String()] = r
	}
	for _, entry := range cs.Entries {
		r, ok := byID[entry.ObjMetadata.String()]
		if !ok {
			continue
		}
		res.Changes = append(res.Changes, Change{Ref: r, Action: ssaAction(entry.Action)})
	}

	current := NewInventory(refs)
	stale := old.Minus(current)
	keep := refs
	if opts.Prune {
		pruned, failed, err := e.prune(ctx, stale, opts.Name)
		res.Changes = append(res.Changes, pruned...)
		keep = append(keep, failed...)
		if err != nil {
			if saveErr := opts.Inventory.Save(ctx, NewInventory(keep)); saveErr != nil {
				return res, errors.Join(err, saveErr)
			}
			return res, err
		}
	} else {
		for _, r := range stale {
			res.Changes = append(res.Changes, Change{Ref: r, Action: ActionStale})
		}
		keep = append(keep, stale...)
	}
	if err := opts.Inventory.Save(ctx, NewInventory(keep)); err != nil {
		return res, err
	}

	if opts.Wait > 0 && len(refs) > 0 {
		health, err := e.Wait(ctx, refs, WaitOptions{Timeout: opts.Wait, Interval: opts.WaitInterval, Progress: opts.Progress})
		res.Health = health
		if err != nil {
			return res, err
		}
	}
	return res, nil
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

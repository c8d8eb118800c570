package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/fluxcd/pkg/ssa"
	"github.com/pmezard/go-difflib/difflib"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// DiffOptions configure Diff. Namespace and Name are required.
type DiffOptions struct {
	Namespace  string
	Name       string
	Inventory  InventoryStore
	Prune      bool
	AllowEmpty bool
	// SkipHooks leaves hooks out, as ApplyOptions.SkipHooks.
	SkipHooks bool
	// ReplaceAll is ApplyOptions.ReplaceAll.
	ReplaceAll bool
}

// Diff reports, without writing, what Apply would do: each object created,
// configured (with a unified YAML diff of the changed fields, server-set
// fields and status left out; Secret values masked), replaced or unchanged,
// each hook that would run, and the objects of the last inventory that left
// the render (pruned with Prune, else stale). Each change names its phase
// and wave when the set has hooks or waves. It uses a server-side dry-run
// per object, so admission and validation errors show up here as they would
// on apply.
func (e *Engine) Diff(ctx context.Context, objs []*unstructured.Unstructured, opts DiffOptions) (*Result, error) {
	if opts.Namespace == "" {
		return nil, ErrNoNamespace
	}
	if err := ValidateInventoryName(opts.Name); err != nil {
		return nil, err
	}
	if opts.Inventory == nil {
		opts.Inventory = &ConfigMapStore{Client: e.client, Namespace: opts.Namespace, Name: opts.Name}
	}
	p, err := e.prepare(ctx, objs, prepareOptions{namespace: opts.Namespace, name: opts.Name, inventory: opts.Inventory, allowEmpty: opts.AllowEmpty, skipHooks: opts.SkipHooks, replaceAll: opts.ReplaceAll})
	if err != nil {
		return nil, err
	}
	phased := !p.plan.Simple()
	res := &Result{Skipped: p.plan.Skipped, Warnings: p.warnings}
	var refs []ObjectRef
	var errs []error
	var conflicts []string
	for _, step := range p.plan.Steps {
		for _, o := range step.Objects {
			r := RefOf(o)
			refs = append(refs, r)
			c, conflict, err := e.diffObject(ctx, o, p.plan.Of[o].Replace, opts.Name)
			switch {
			case err != nil:
				var im *ImmutableError
				if errors.As(err, &im) {
					return nil, err
				}
				errs = append(errs, err)
				continue
			case conflict != "":
				conflicts = append(conflicts, conflict)
				continue
			}
			if phased {
				c.Phase, c.Wave = step.Phase, step.Wave
			}
			res.Changes = append(res.Changes, c)
		}
		for _, h := range step.Hooks {
			if err := e.dryRunHook(ctx, h); err != nil {
				errs = append(errs, fmt.Errorf("hook %s: %w", RefOf(h), err))
				continue
			}
			res.Changes = append(res.Changes, Change{Ref: RefOf(h), Action: ActionHook, Phase: step.Phase, Wave: step.Wave})
		}
	}
	if len(conflicts) > 0 {
		return nil, fmt.Errorf("%w: %d object(s) belong to another inventory, nothing would be applied:\n  %s", ErrRefused, len(conflicts), strings.Join(conflicts, "\n  "))
	}
	if len(errs) > 0 {
		if err := missingNamespace(errors.Join(errs...), opts.Namespace); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w, nothing would be applied:\n  %w", ErrDryRun, errors.Join(errs...))
	}
	for _, r := range p.old.Minus(NewInventory(refs)) {
		c := Change{Ref: r, Action: ActionStale}
		if opts.Prune {
			c.Action = ActionPruned
			live := r.Unstructured()
			if err := e.client.Get(ctx, keyOf(r), live); err == nil {
				if live.GetAnnotations()[PruneAnnotation] == PruneDisabled || live.GetLabels()[InventoryLabel] != opts.Name {
					c.Action = ActionPruneSkipped
				} else if c.Diff, err = unifiedDiff(r, live, nil); err != nil {
					return nil, err
				}
			}
		}
		res.Changes = append(res.Changes, c)
	}
	return res, nil
}

// diffObject dry-runs o and returns its change with a diff, or the owner
// conflict that refuses it. An immutable change is reported replaced when
// o opts into Replace, else as an *ImmutableError.
func (e *Engine) diffObject(ctx context.Context, o *unstructured.Unstructured, replace bool, name string) (Change, string, error) {
	r := RefOf(o)
	entry, live, merged, err := e.manager.Diff(ctx, o, ssa.DefaultDiffOptions())
	if err != nil {
		if !isImmutable(err) {
			return Change{}, "", fmt.Errorf("%s: %w", r, err)
		}
		if !replace {
			return Change{}, "", &ImmutableError{Ref: r, Err: err}
		}
		current := r.Unstructured()
		if err := e.client.Get(ctx, keyOf(r), current); err != nil {
			return Change{}, "", fmt.Errorf("reading %s: %w", r, err)
		}
		d, err := unifiedDiff(r, current, o)
		return Change{Ref: r, Action: ActionReplaced, Diff: d}, "", err
	}
	if live != nil {
		if c := ownerConflict(r, live.GetLabels(), name); c != "" {
			return Change{}, c, nil
		}
	}
	c := Change{Ref: r, Action: ssaAction(entry.Action)}
	switch c.Action {
	case ActionCreated:
		c.Diff, err = unifiedDiff(r, nil, o)
	case ActionConfigured:
		c.Diff, err = unifiedDiff(r, live, merged)
	}
	return c, "", err
}

// serverFields are metadata fields the server sets; they are left out of diffs.
var serverFields = []string{"managedFields", "resourceVersion", "uid", "generation", "creationTimestamp", "selfLink"}

// cleanForDiff returns a copy of u without status, server-set metadata, and
// with Secret values masked.
func cleanForDiff(u *unstructured.Unstructured) map[string]any {
	if u == nil {
		return nil
	}
	c := u.DeepCopy()
	unstructured.RemoveNestedField(c.Object, "status")
	for _, f := range serverFields {
		unstructured.RemoveNestedField(c.Object, "metadata", f)
	}
	unstructured.RemoveNestedField(c.Object, "metadata", "annotations", "kubectl.kubernetes.io/last-applied-configuration")
	if ann := c.GetAnnotations(); ann != nil && len(ann) == 0 {
		unstructured.RemoveNestedField(c.Object, "metadata", "annotations")
	}
	if c.GetKind() == "Secret" && c.GroupVersionKind().Group == "" {
		for _, key := range []string{"data", "stringData"} {
			if m, ok := c.Object[key].(map[string]any); ok {
				for k := range m {
					m[k] = "***"
				}
			}
		}
	}
	return c.Object
}

// unifiedDiff renders from → to as a unified YAML diff ("" for no change).
func unifiedDiff(r ObjectRef, from, to *unstructured.Unstructured) (string, error) {
	a, err := toYAML(cleanForDiff(from))
	if err != nil {
		return "", fmt.Errorf("%s: %w", r, err)
	}
	b, err := toYAML(cleanForDiff(to))
	if err != nil {
		return "", fmt.Errorf("%s: %w", r, err)
	}
	if a == b {
		return "", nil
	}
	name := strings.ToLower(r.Kind) + "/" + r.Name
	return difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: splitLines(a), B: splitLines(b),
		FromFile: "live/" + name, ToFile: "desired/" + name, Context: 3,
	})
}

// splitLines splits s into lines keeping their ends; "" has no lines.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.SplitAfter(strings.TrimSuffix(s, "\n"), "\n")
}

func toYAML(m map[string]any) (string, error) {
	if m == nil {
		return "", nil
	}
	b, err := yaml.Marshal(m)
	return string(b), err
}

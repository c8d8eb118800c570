package engine

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/fluxcd/pkg/ssa"
	"github.com/pmezard/go-difflib/difflib"
	rbacv1 "k8s.io/api/rbac/v1"
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
	// AllowedSubjects is ApplyOptions.AllowedSubjects.
	AllowedSubjects []rbacv1.Subject
	// TrustRBAC is ApplyOptions.TrustRBAC.
	TrustRBAC bool
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
	p, err := e.prepare(ctx, objs, prepareOptions{namespace: opts.Namespace, name: opts.Name, inventory: opts.Inventory, allowEmpty: opts.AllowEmpty, skipHooks: opts.SkipHooks, replaceAll: opts.ReplaceAll, allowedSubjects: opts.AllowedSubjects, trustRBAC: opts.TrustRBAC})
	if err != nil {
		return nil, err
	}
	phased := !p.plan.Simple()
	res := &Result{Skipped: p.plan.Skipped, Warnings: p.warnings}
	var refs []ObjectRef
	var errs []error
	var conflicts []string
	roles := rolesOf(p.plan.Objects())
	for _, step := range p.plan.Steps {
		for _, o := range step.Objects {
			r := RefOf(o)
			refs = append(refs, r)
			c, conflict, err := e.diffObject(ctx, o, p.plan.Of[o].Replace, opts.Name)
			if e.awaitsRoleInSet(ctx, o, err, roles) {
				// Created after its Role, which the same set creates.
				c = Change{Ref: r, Action: ActionCreated}
				c.Diff, err = unifiedDiff(r, nil, o)
			}
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

// cleanForDiff returns a copy of u without status and server-set metadata.
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
	return c.Object
}

// Masks a diff shows in place of a Secret's values.
const (
	MaskedValue        = "***"
	MaskedChangedValue = "*** (changed)"
)

// maskSecrets replaces every value of a core Secret's data and stringData
// in from and to (cleaned copies) by MaskedValue, and by MaskedChangedValue
// on the to side where the value differs from the from side's.
func maskSecrets(from, to map[string]any) {
	isSecret := func(m map[string]any) bool {
		return m != nil && m["kind"] == "Secret" && (m["apiVersion"] == "v1" || m["apiVersion"] == nil)
	}
	for _, key := range []string{"data", "stringData"} {
		var before map[string]any
		if isSecret(from) {
			before, _ = from[key].(map[string]any)
		}
		if isSecret(to) {
			if after, ok := to[key].(map[string]any); ok {
				for k, v := range after {
					old, had := before[k]
					if had && !reflect.DeepEqual(old, v) {
						after[k] = MaskedChangedValue
					} else {
						after[k] = MaskedValue
					}
				}
			}
		}
		for k := range before {
			before[k] = MaskedValue
		}
	}
}

// MaskSecretValues replaces every value of obj's data and stringData by
// MaskedValue when obj is a core Secret (a copy to print, not to apply).
func MaskSecretValues(obj map[string]any) { maskSecrets(nil, obj) }

// UnifiedDiff renders from → to (either may be nil) as a unified YAML diff
// labelled fromFile and toFile, "" for no change. Status and server-set
// metadata are left out; a Secret's values never appear: each shows as
// MaskedValue, or MaskedChangedValue where it changed, so a changed key is
// visible without either value.
func UnifiedDiff(fromFile, toFile string, from, to *unstructured.Unstructured) (string, error) {
	f, t := cleanForDiff(from), cleanForDiff(to)
	maskSecrets(f, t)
	a, err := toYAML(f)
	if err != nil {
		return "", err
	}
	b, err := toYAML(t)
	if err != nil {
		return "", err
	}
	if a == b {
		return "", nil
	}
	return difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: splitLines(a), B: splitLines(b),
		FromFile: fromFile, ToFile: toFile, Context: 3,
	})
}

// unifiedDiff is UnifiedDiff of the live object and the desired one.
func unifiedDiff(r ObjectRef, from, to *unstructured.Unstructured) (string, error) {
	name := strings.ToLower(r.Kind) + "/" + r.Name
	d, err := UnifiedDiff("live/"+name, "desired/"+name, from, to)
	if err != nil {
		return "", fmt.Errorf("%s: %w", r, err)
	}
	return d, nil
}

// splitLines splits s into lines, each ending in a newline (the last one
// given one if it has none: difflib prints lines as they are, and a last
// line without its newline would run into the next line of the diff, or
// into the next object's diff); "" has no lines.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	lines := strings.SplitAfter(s, "\n")
	return lines[:len(lines)-1]
}

func toYAML(m map[string]any) (string, error) {
	if m == nil {
		return "", nil
	}
	b, err := yaml.Marshal(m)
	return string(b), err
}

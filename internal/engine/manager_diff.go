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
}

// Diff reports, without writing, what Apply would do: each object created,
// configured (with a unified YAML diff of the changed fields, server-set
// fields and status left out; Secret values masked) or unchanged, and the
// objects of the last inventory that left the render (pruned with Prune, else
// stale). It uses a server-side dry-run per object, so admission and
// validation errors show up here as they would on apply.
func (e *Engine) Diff(ctx context.Context, objs []*unstructured.Unstructured, opts DiffOptions) (*Result, error) {
	if opts.Namespace == "" {
		return nil, errors.New("a target namespace is required (-n/--namespace)")
	}
	if err := ValidateInventoryName(opts.Name); err != nil {
		return nil, err
	}
	if opts.Inventory == nil {
		opts.Inventory = &ConfigMapStore{Client: e.client, Namespace: opts.Namespace, Name: opts.Name}
	}
	objs, err := e.prepare(objs, opts.Namespace, opts.Name, opts.AllowEmpty)
	if err != nil {
		return nil, err
	}
	res := &Result{}
	refs := make([]ObjectRef, 0, len(objs))
	var errs []error
	var conflicts []string
	for _, o := range objs {
		r := RefOf(o)
		refs = append(refs, r)
		entry, live, merged, err := e.manager.Diff(ctx, o, ssa.DefaultDiffOptions())
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r, err))
			continue
		}
		if live != nil {
			if c := ownerConflict(r, live.GetLabels(), opts.Name); c != "" {
				conflicts = append(conflicts, c)
				continue
			}
		}
		c := Change{Ref: r, Action: ssaAction(entry.Action)}
		switch c.Action {
		case ActionCreated:
			c.Diff, err = unifiedDiff(r, nil, o)
		case ActionConfigured:
			c.Diff, err = unifiedDiff(r, live, merged)
		}
		if err != nil {
			return nil, err
		}
		res.Changes = append(res.Changes, c)
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
	old, err := opts.Inventory.Load(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range old.Minus(NewInventory(refs)) {
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

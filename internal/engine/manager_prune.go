package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/fluxcd/pkg/ssa"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// prune deletes the stale objects that still carry this inventory's label and
// are not annotated keyless.dev/prune: disabled. It returns the changes, the
// objects whose deletion failed (to keep in the inventory) and an error
// naming them.
func (e *Engine) prune(ctx context.Context, stale []ObjectRef, name string) ([]Change, []ObjectRef, error) {
	var changes []Change
	var failed []ObjectRef
	var errs []error
	opts := ssa.DeleteOptions{
		PropagationPolicy: metav1.DeletePropagationBackground,
		Inclusions:        map[string]string{InventoryLabel: name},
		Exclusions:        map[string]string{PruneAnnotation: PruneDisabled},
	}
	for _, r := range stale {
		entry, err := e.manager.Delete(ctx, r.Unstructured(), opts)
		if err != nil {
			failed = append(failed, r)
			errs = append(errs, fmt.Errorf("pruning %s: %w", r, err))
			continue
		}
		changes = append(changes, Change{Ref: r, Action: ssaAction(entry.Action)})
	}
	return changes, failed, errors.Join(errs...)
}

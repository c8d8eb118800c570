package engine

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyless-cd/keyless/internal/lifecycle"
)

// hookRun is a hook object created in this sync.
type hookRun struct {
	run     HookRun
	lc      lifecycle.Lifecycle
	started time.Time
}

// createHooks creates the step's hooks, each after deleting its previous
// run when its policy is BeforeHookCreation. A hook with a fixed name whose
// previous object is still there without that policy is an error, as in Helm.
func (e *Engine) createHooks(ctx context.Context, step lifecycle.Step, opts ApplyOptions) ([]*hookRun, error) {
	out := make([]*hookRun, 0, len(step.Hooks))
	for _, h := range step.Hooks {
		lc, err := lifecycle.Of(h, false)
		if err != nil {
			return out, err
		}
		obj := h.DeepCopy()
		labels := obj.GetLabels()
		labels[HookPhaseLabel] = string(step.Phase)
		obj.SetLabels(labels)
		if lc.Deletes(lifecycle.DeleteBeforeHookCreation) {
			if err := e.deletePreviousRuns(ctx, obj, opts); err != nil {
				return out, err
			}
		}
		if err := e.client.Create(ctx, obj, client.FieldOwner(e.fieldManager)); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return out, fmt.Errorf("%s hook %s: a previous run still exists and its delete policy does not remove it before a new run (add %s: BeforeHookCreation, or Helm's before-hook-creation): %w",
					step.Phase, RefOf(obj), lifecycle.ArgoHookDeletePolicyAnnotation, err)
			}
			return out, fmt.Errorf("creating %s hook %s: %w", step.Phase, RefOf(obj), err)
		}
		out = append(out, &hookRun{
			run:     HookRun{Ref: RefOf(obj), Phase: step.Phase, Wave: step.Wave},
			lc:      lc,
			started: time.Now(),
		})
	}
	return out, nil
}

// deletePreviousRuns deletes the objects of earlier runs of hook h: the
// object of its name, or (generateName) every object of its kind labelled
// with this inventory and hook. An object of that name that another
// inventory or no keyless sync made is never deleted.
func (e *Engine) deletePreviousRuns(ctx context.Context, h *unstructured.Unstructured, opts ApplyOptions) error {
	if h.GetName() != "" {
		live := &metav1.PartialObjectMetadata{}
		live.SetGroupVersionKind(h.GroupVersionKind())
		err := e.client.Get(ctx, client.ObjectKeyFromObject(h), live)
		switch {
		case apierrors.IsNotFound(err):
			return nil
		case err != nil:
			return fmt.Errorf("reading hook %s: %w", RefOf(h), err)
		}
		if live.GetLabels()[InventoryLabel] != opts.Name {
			return fmt.Errorf("%w: hook %s: an object of that name exists and keyless did not create it for %q; rename the hook or delete the object",
				ErrRefused, RefOf(h), opts.Name)
		}
		return e.deleteAndWait(ctx, RefOf(h), opts)
	}
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(h.GroupVersionKind().GroupVersion().WithKind(h.GetKind() + "List"))
	if err := e.client.List(ctx, list, client.InNamespace(h.GetNamespace()),
		client.MatchingLabels{InventoryLabel: opts.Name, HookLabel: h.GetLabels()[HookLabel]}); err != nil {
		return fmt.Errorf("finding earlier runs of hook %s (the deployer needs list on %s): %w", RefOf(h), h.GetKind(), err)
	}
	for _, item := range list.Items {
		r := RefOf(h)
		r.Name = item.Name
		if err := e.deleteHook(ctx, r); err != nil {
			return fmt.Errorf("deleting earlier run %s of hook: %w", r, err)
		}
	}
	return nil
}

// deleteHook deletes a hook object and what it owns (its Job's pods).
func (e *Engine) deleteHook(ctx context.Context, r ObjectRef) error {
	err := e.client.Delete(ctx, r.Unstructured(), client.PropagationPolicy(metav1.DeletePropagationBackground))
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// deleteAndWait deletes r in the foreground (what it owns first) and waits
// until it is gone, so the object can be created again under its name.
func (e *Engine) deleteAndWait(ctx context.Context, r ObjectRef, opts ApplyOptions) error {
	err := e.client.Delete(ctx, r.Unstructured(), client.PropagationPolicy(metav1.DeletePropagationForeground))
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("deleting %s: %w", r, err)
	}
	ctx, cancel := context.WithTimeout(ctx, opts.StepTimeout)
	defer cancel()
	err = wait.PollUntilContextCancel(ctx, opts.WaitInterval, true, func(ctx context.Context) (bool, error) {
		live := &metav1.PartialObjectMetadata{}
		live.SetGroupVersionKind(r.GVK())
		err := e.client.Get(ctx, keyOf(r), live)
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
	if err != nil {
		return fmt.Errorf("waiting for %s to be deleted: %w", r, err)
	}
	return nil
}

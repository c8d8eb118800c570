package engine

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ownerConflict describes obj when its live copy belongs to another
// inventory, or returns "".
func ownerConflict(ref ObjectRef, liveLabels map[string]string, name string) string {
	other := liveLabels[InventoryLabel]
	if other == "" || other == name {
		return ""
	}
	return fmt.Sprintf("%s: already deployed by %q (label %s=%s); two Applications (or apply --name values) must not render the same object — remove it from one of them, or hand it over with `kubectl label %s %s-`",
		ref, other, InventoryLabel, other, strings.ToLower(ref.Kind)+"/"+ref.Name, InventoryLabel)
}

// checkOwners refuses, before anything is written, objects whose live copy
// another inventory manages: applying them would silently take them over and
// the other inventory's next sync would take them back, or prune them.
func (e *Engine) checkOwners(ctx context.Context, objs []*unstructured.Unstructured, name string) error {
	var conflicts []string
	for _, o := range objs {
		live := &metav1.PartialObjectMetadata{}
		live.SetGroupVersionKind(o.GroupVersionKind())
		err := e.client.Get(ctx, client.ObjectKeyFromObject(o), live)
		switch {
		case apierrors.IsNotFound(err):
			continue
		case err != nil:
			return fmt.Errorf("reading %s: %w", RefOf(o), err)
		}
		if c := ownerConflict(RefOf(o), live.GetLabels(), name); c != "" {
			conflicts = append(conflicts, c)
		}
	}
	if len(conflicts) > 0 {
		return fmt.Errorf("%w: %d object(s) belong to another inventory, nothing was applied:\n  %s", ErrRefused, len(conflicts), strings.Join(conflicts, "\n  "))
	}
	return nil
}

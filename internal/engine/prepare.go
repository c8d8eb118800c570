package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyless-cd/keyless/internal/lifecycle"
)

// prepared is a render made ready for a sync: copied, guarded, labelled and
// placed in phases and waves. Nothing has been written.
type prepared struct {
	plan *lifecycle.Plan
	// old is the inventory of the last sync.
	old      *Inventory
	warnings []string
}

// prepareOptions are what prepare needs from ApplyOptions or DiffOptions.
type prepareOptions struct {
	namespace, name string
	inventory       InventoryStore
	allowEmpty      bool
	skipHooks       bool
	replaceAll      bool
	allowedSubjects []rbacv1.Subject
	trustRBAC       bool
}

// prepare copies objs, skips a manifest of the target namespace itself,
// enforces the guards, labels every object, loads the last inventory and
// plans the sync. Nothing is written.
func (e *Engine) prepare(ctx context.Context, objs []*unstructured.Unstructured, o prepareOptions) (*prepared, error) {
	out := make([]*unstructured.Unstructured, 0, len(objs))
	p := &prepared{}
	for _, obj := range objs {
		if isOwnNamespace(obj, o.namespace) {
			p.warnings = append(p.warnings, e.ownNamespaceWarning(ctx, obj))
			continue
		}
		out = append(out, obj.DeepCopy())
	}
	if err := Confine(out, o.namespace, e.mapper); err != nil {
		return nil, err
	}
	if err := refuseIdentityTheft(out, e.protected); err != nil {
		return nil, err
	}
	if !o.trustRBAC {
		if err := refuseRBACEscalation(out, o.namespace, e.protected, o.allowedSubjects); err != nil {
			return nil, err
		}
	}
	setManagedLabels(out, o.name)
	old, err := o.inventory.Load(ctx)
	if err != nil {
		return nil, err
	}
	p.old = old
	p.plan, err = lifecycle.NewPlan(out, lifecycle.PlanOptions{FirstSync: len(old.Entries) == 0, SkipHooks: o.skipHooks})
	if err != nil {
		return nil, err
	}
	if len(p.plan.Objects()) == 0 && !o.allowEmpty {
		return nil, ErrEmpty
	}
	for obj, l := range p.plan.Of {
		if o.replaceAll && !l.Hook && !l.Replace {
			l.Replace = true
			p.plan.Of[obj] = l
		}
		if l.Hook {
			labels := obj.GetLabels()
			labels[HookLabel] = hookID(obj)
			obj.SetLabels(labels)
		}
	}
	return p, nil
}

// HookLabel and HookPhaseLabel mark hook objects keyless created.
const (
	HookLabel      = lifecycle.HookLabel
	HookPhaseLabel = lifecycle.HookPhaseLabel
)

// hookID identifies a hook within its inventory across syncs: a hash of its
// group, kind and name (or generateName), short enough for a label value.
func hookID(u *unstructured.Unstructured) string {
	n := u.GetName()
	if n == "" {
		n = u.GetGenerateName() + "*"
	}
	sum := sha256.Sum256([]byte(u.GroupVersionKind().Group + "/" + u.GetKind() + "/" + n))
	return hex.EncodeToString(sum[:10])
}

func isNamespace(u *unstructured.Unstructured) bool {
	gvk := u.GroupVersionKind()
	return gvk.Group == "" && gvk.Kind == "Namespace"
}

// ownNamespaceWarning explains why a manifest of the target namespace was
// skipped and what of its labels and annotations differs from the live one.
func (e *Engine) ownNamespaceWarning(ctx context.Context, obj *unstructured.Unstructured) string {
	msg := fmt.Sprintf("Namespace/%s skipped: it is the target namespace, and keyless never writes Namespaces (a cluster admin manages it)", obj.GetName())
	live := &corev1.Namespace{}
	err := e.client.Get(ctx, client.ObjectKey{Name: obj.GetName()}, live)
	switch {
	case apierrors.IsForbidden(err):
		return msg + "; its labels and annotations were not compared with the live namespace (no permission to read namespaces)"
	case err != nil:
		return msg + fmt.Sprintf("; not compared with the live namespace: %v", err)
	}
	var diffs []string
	diffs = append(diffs, metadataDiff("label", obj.GetLabels(), live.Labels)...)
	diffs = append(diffs, metadataDiff("annotation", obj.GetAnnotations(), live.Annotations)...)
	if len(diffs) > 0 {
		msg += "; it differs from the live namespace: " + strings.Join(diffs, ", ")
	}
	return msg
}

// metadataDiff lists the keys of want that live lacks or holds another value for.
func metadataDiff(what string, want, live map[string]string) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		switch lv, ok := live[k]; {
		case !ok:
			out = append(out, fmt.Sprintf("%s %s=%s is not set", what, k, want[k]))
		case lv != want[k]:
			out = append(out, fmt.Sprintf("%s %s is %q, not %q", what, k, lv, want[k]))
		}
	}
	return out
}

package controller

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/celhealth"
)

// Why a dependency is not ready, besides its own Ready reason
// (kv1.DependencyWait.Reason).
const (
	DependencyNotFound   = "NotFound"
	DependencyNotAllowed = "NotAllowed"
	DependencyCycle      = "Cycle"
	DependencyExprFalse  = "ReadyExprFalse"
	DependencyExprError  = "ReadyExprError"
	// maxDependencyDepth bounds the walk that looks for a cycle.
	maxDependencyDepth = 64
)

// awaitDependencies holds a sync for trigger (the last synced state
// running) until each of spec.dependsOn is ready: waiting reports that
// app waits, recorded in its status. Reverting drift never waits.
func (r *ApplicationReconciler) awaitDependencies(ctx context.Context, app *kv1.Application, trigger string) (waiting bool, err error) {
	if trigger == TriggerDrift {
		return false, nil
	}
	wait, err := r.dependencyWait(ctx, app)
	if err != nil {
		return false, err
	}
	if wait != nil {
		r.waitForDependency(app, wait)
		return true, nil
	}
	app.Status.WaitingOn = nil
	return false, nil
}

// dependencyWait returns the first of app's spec.dependsOn that is not
// ready for it (nil: all are), read from the cache of the managed
// namespaces. A dependency is ready when its Ready condition is True for
// its current generation and its last attempted revision is its last
// applied one, or, with readyExpr, when the expression holds. A cycle
// through app, a dependency not found, or one in another namespace that
// does not allow app's, is a wait too, naming it.
func (r *ApplicationReconciler) dependencyWait(ctx context.Context, app *kv1.Application) (*kv1.DependencyWait, error) {
	if len(app.Spec.DependsOn) == 0 {
		return nil, nil
	}
	if cycle, err := r.dependencyCycle(ctx, app); err != nil {
		return nil, err
	} else if cycle != "" {
		d := app.Spec.DependsOn[0]
		return &kv1.DependencyWait{Name: d.Name, Namespace: namespaceOr(d.Namespace, app.Namespace), Reason: DependencyCycle,
			Message: "dependency cycle " + cycle + ": none of its Applications can sync until one of them drops its dependsOn"}, nil
	}
	for _, d := range app.Spec.DependsOn {
		w, err := r.checkDependency(ctx, app, d)
		if err != nil || w != nil {
			return w, err
		}
	}
	return nil, nil
}

// checkDependency is dependencyWait for one dependency.
func (r *ApplicationReconciler) checkDependency(ctx context.Context, app *kv1.Application, d kv1.Dependency) (*kv1.DependencyWait, error) {
	ns := namespaceOr(d.Namespace, app.Namespace)
	wait := func(reason, msg string) (*kv1.DependencyWait, error) {
		return &kv1.DependencyWait{Name: d.Name, Namespace: ns, Reason: reason, Message: msg}, nil
	}
	if ns != app.Namespace && !r.managesNamespace(ns) {
		return wait(DependencyNotAllowed, fmt.Sprintf("namespace %s is not one this controller manages", ns))
	}
	dep := &kv1.Application{}
	if err := r.client.Get(ctx, types.NamespacedName{Namespace: ns, Name: d.Name}, dep); err != nil {
		if apierrors.IsNotFound(err) {
			return wait(DependencyNotFound, fmt.Sprintf("Application %s/%s does not exist (deleted or renamed?)", ns, d.Name))
		}
		return nil, fmt.Errorf("reading dependency %s/%s: %w", ns, d.Name, err)
	}
	if ns != app.Namespace && !allowsDependentsFrom(dep, app.Namespace) {
		return wait(DependencyNotAllowed, fmt.Sprintf("Application %s/%s does not let namespace %s depend on it: its admin adds %s to its annotation %s",
			ns, d.Name, app.Namespace, app.Namespace, kv1.AllowDependentsFromAnnotation))
	}
	if d.ReadyExpr != "" {
		return readyExprWait(app, dep, d, wait)
	}
	ready := apimeta.FindStatusCondition(dep.Status.Conditions, kv1.ReadyCondition)
	switch {
	case ready == nil:
		return wait(kv1.SyncStatusUnknown, "it has not been reconciled yet")
	case ready.Status != metav1.ConditionTrue:
		return wait(ready.Reason, ready.Message)
	case dep.Status.ObservedGeneration != dep.Generation:
		return wait(kv1.ReasonProgressing, "its latest spec is not reconciled yet")
	case dep.Status.LastAttemptedRevision != dep.Status.LastAppliedRevision:
		return wait(kv1.ReasonProgressing, fmt.Sprintf("its revision %s is not applied yet", kv1.ShortSHA(dep.Status.LastAttemptedRevision)))
	}
	return nil, nil
}

func readyExprWait(app, dep *kv1.Application, d kv1.Dependency, wait func(reason, msg string) (*kv1.DependencyWait, error)) (*kv1.DependencyWait, error) {
	expr, err := celhealth.CompileReadyExpr(d.ReadyExpr)
	if err != nil {
		return wait(DependencyExprError, err.Error())
	}
	self, err := runtime.DefaultUnstructuredConverter.ToUnstructured(app)
	if err != nil {
		return nil, err
	}
	other, err := runtime.DefaultUnstructuredConverter.ToUnstructured(dep)
	if err != nil {
		return nil, err
	}
	ok, err := expr.Eval(self, other)
	switch {
	case err != nil:
		return wait(DependencyExprError, err.Error())
	case !ok:
		return wait(DependencyExprFalse, fmt.Sprintf("readyExpr %q is false", d.ReadyExpr))
	}
	return nil, nil
}

// dependencyCycle returns the cycle through app ("a → b → a", with
// namespaces when they differ) among the cached Applications' dependsOn,
// or "" when there is none.
func (r *ApplicationReconciler) dependencyCycle(ctx context.Context, app *kv1.Application) (string, error) {
	start := types.NamespacedName{Namespace: app.Namespace, Name: app.Name}
	var path []types.NamespacedName
	visited := map[types.NamespacedName]bool{}
	var walk func(cur *kv1.Application, depth int) (bool, error)
	walk = func(cur *kv1.Application, depth int) (bool, error) {
		if depth > maxDependencyDepth {
			return false, nil
		}
		for _, d := range cur.Spec.DependsOn {
			next := types.NamespacedName{Namespace: namespaceOr(d.Namespace, cur.Namespace), Name: d.Name}
			if next == start {
				path = append(path, next)
				return true, nil
			}
			if visited[next] || !r.managesNamespace(next.Namespace) {
				continue
			}
			visited[next] = true
			dep := &kv1.Application{}
			if err := r.client.Get(ctx, next, dep); err != nil {
				if apierrors.IsNotFound(err) {
					continue
				}
				return false, err
			}
			path = append(path, next)
			if found, err := walk(dep, depth+1); found || err != nil {
				return found, err
			}
			path = path[:len(path)-1]
		}
		return false, nil
	}
	found, err := walk(app, 0)
	if err != nil || !found {
		return "", err
	}
	names := []string{displayName(start, app.Namespace)}
	for _, p := range path {
		names = append(names, displayName(p, app.Namespace))
	}
	return strings.Join(names, " → "), nil
}

// waitForDependency records w on app: Ready False DependencyNotReady
// naming the dependency and why, since when (kept while it is the same
// dependency), and an Event when the wait is new or its reason changed.
func (r *ApplicationReconciler) waitForDependency(app *kv1.Application, w *kv1.DependencyWait) {
	prev := app.Status.WaitingOn
	w.Since = metav1.Now()
	if prev != nil && prev.Name == w.Name && prev.Namespace == w.Namespace {
		w.Since = prev.Since
	}
	app.Status.WaitingOn = w
	msg := fmt.Sprintf("waiting for Application %s: %s", displayName(types.NamespacedName{Namespace: w.Namespace, Name: w.Name}, app.Namespace), w.Reason)
	if w.Message != "" {
		msg += ": " + w.Message
	}
	msg += " (since " + w.Since.UTC().Format("2006-01-02 15:04:05Z") + ")"
	if prev == nil || prev.Name != w.Name || prev.Namespace != w.Namespace || prev.Reason != w.Reason {
		r.recorder.Eventf(app, nil, corev1.EventTypeNormal, kv1.ReasonDependencyNotReady, "Sync", "%s", msg)
	}
	setReady(app, false, kv1.ReasonDependencyNotReady, msg)
}

// dependsOnIndex indexes Applications by each Application they depend on
// ("namespace/name"), so that a change of one finds its dependents
// without listing (and copying) every Application: at 1000 Applications a
// push's 1000 status writes would otherwise copy a million.
const dependsOnIndex = "keyless.dev/dependsOn"

// dependencyKeys are the index values of app: its dependencies as
// "namespace/name".
func dependencyKeys(obj client.Object) []string {
	app, ok := obj.(*kv1.Application)
	if !ok || len(app.Spec.DependsOn) == 0 {
		return nil
	}
	keys := make([]string, 0, len(app.Spec.DependsOn))
	for _, d := range app.Spec.DependsOn {
		keys = append(keys, namespaceOr(d.Namespace, app.Namespace)+"/"+d.Name)
	}
	return keys
}

// indexDependsOn registers dependsOnIndex with the manager's cache.
func indexDependsOn(ctx context.Context, mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(ctx, &kv1.Application{}, dependsOnIndex, dependencyKeys); err != nil {
		return fmt.Errorf("indexing spec.dependsOn: %w", err)
	}
	return nil
}

// dependentsOf maps a changed Application to the Applications of the
// managed namespaces that depend on it: they look at it again at once.
func (r *ApplicationReconciler) dependentsOf(ctx context.Context, obj client.Object) []reconcile.Request {
	list := &kv1.ApplicationList{}
	if err := r.client.List(ctx, list, client.MatchingFields{dependsOnIndex: obj.GetNamespace() + "/" + obj.GetName()}); err != nil {
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for _, a := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: a.Namespace, Name: a.Name}})
	}
	return out
}

// readinessChanged passes the Application events a dependent cares about:
// created, deleted, its Ready condition, generation, revisions or
// dependsOn changed.
var readinessChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		a, okA := e.ObjectOld.(*kv1.Application)
		b, okB := e.ObjectNew.(*kv1.Application)
		if !okA || !okB {
			return false
		}
		ra, rb := apimeta.FindStatusCondition(a.Status.Conditions, kv1.ReadyCondition), apimeta.FindStatusCondition(b.Status.Conditions, kv1.ReadyCondition)
		return (ra == nil) != (rb == nil) || (ra != nil && (ra.Status != rb.Status || ra.Reason != rb.Reason)) ||
			a.Status.LastAppliedRevision != b.Status.LastAppliedRevision || a.Status.ObservedGeneration != b.Status.ObservedGeneration ||
			a.Generation != b.Generation || a.Annotations[kv1.AllowDependentsFromAnnotation] != b.Annotations[kv1.AllowDependentsFromAnnotation]
	},
}

func allowsDependentsFrom(dep *kv1.Application, namespace string) bool {
	for _, ns := range strings.Split(dep.Annotations[kv1.AllowDependentsFromAnnotation], ",") {
		if ns = strings.TrimSpace(ns); ns == "*" || ns == namespace {
			return true
		}
	}
	return false
}

func namespaceOr(ns, def string) string {
	if ns == "" {
		return def
	}
	return ns
}

// displayName is name, or namespace/name when not in ns.
func displayName(n types.NamespacedName, ns string) string {
	if n.Namespace == ns {
		return n.Name
	}
	return n.Namespace + "/" + n.Name
}

package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/ledger"
	"github.com/keyless-cd/keyless/internal/syncwindow"
)

// maxOverrideBytes bounds the override annotation.
const maxOverrideBytes = 4 << 10

// WindowOverride is the value of kv1.OverrideWindowAnnotation, written by
// `keyless sync --override-window`: the sync request it belongs to, who
// asked (as the API server named them to the CLI; the API server's audit
// log of the annotation's write is the authority), and why.
type WindowOverride struct {
	Token  string `json:"token"`
	By     string `json:"by"`
	Reason string `json:"reason"`
}

// preSyncGates hold a sync for trigger before anything is fetched: the
// dependencies (spec.dependsOn) and the sync windows. stop, when set, is
// the pass's result (app's status says why); override names the person
// who synced through a closed window, for the sync's record.
func (r *ApplicationReconciler) preSyncGates(ctx context.Context, app *kv1.Application, trigger string, interval time.Duration) (override string, stop *ctrl.Result, err error) {
	if waiting, err := r.awaitDependencies(ctx, app, trigger); waiting || err != nil {
		return "", &ctrl.Result{RequeueAfter: interval}, err
	}
	override, blocked, requeue, err := r.windowGate(ctx, app, trigger, interval)
	switch {
	case errors.Is(err, syncwindow.ErrInvalid):
		app.Status.ObservedGeneration = app.Generation
		res, err := r.failStep(app, stepFailure{reason: ReasonInvalidSpec, err: err, permanent: true}, interval)
		return "", &res, err
	case err != nil:
		return "", nil, err
	case blocked:
		return "", &ctrl.Result{RequeueAfter: requeue}, nil
	}
	return override, nil, nil
}

// windowGate decides whether sync windows let this pass sync for
// trigger: blocked (with app's status saying which window and until when,
// and when to look again), or not, with the override that let it through
// ("" for none) for the sync's record.
func (r *ApplicationReconciler) windowGate(ctx context.Context, app *kv1.Application, trigger string, interval time.Duration) (override string, blocked bool, requeue time.Duration, err error) {
	windows := make([]syncwindow.Window, 0, len(app.Spec.SyncWindows))
	for i, w := range app.Spec.SyncWindows {
		windows = append(windows, syncwindow.Window{SyncWindow: w, Source: fmt.Sprintf("spec.syncWindows[%d]", i)})
	}
	admin, err := r.adminWindows(ctx, app.Namespace)
	if err != nil {
		return "", false, 0, err
	}
	windows = append(windows, admin...)
	app.Status.SyncWindow = nil
	if len(windows) == 0 {
		return "", false, 0, nil
	}
	set, err := syncwindow.Compile(windows)
	if err != nil {
		return "", false, 0, err
	}
	d := set.At(time.Now())
	switch {
	case !d.Blocked:
		return "", false, 0, nil
	case trigger == TriggerRequest:
		if o := windowOverride(app); o != nil {
			text := fmt.Sprintf("%s: %s", o.By, o.Reason)
			r.recorder.Eventf(app, nil, corev1.EventTypeNormal, kv1.ReasonWindowOverridden, "Sync", "sync window %s overridden by %s", d.Window, text)
			r.writeLedgerEvent(app, ledger.Record{Kind: ledger.KindOverride, By: o.By, Reason: o.Reason, Window: d.Window})
			return text, false, 0, nil
		}
		if d.ManualSync {
			return "", false, 0, nil
		}
	case trigger == TriggerDrift && d.SelfHeal:
		return "", false, 0, nil
	}
	app.Status.SyncWindow = &kv1.SyncWindowStatus{Window: d.Window, Until: metav1.NewTime(d.Until)}
	setReady(app, false, kv1.ReasonSyncWindowClosed, fmt.Sprintf("sync window closed until %s: %s; nothing is applied until then (`keyless sync %s -n %s --override-window --reason TEXT` to sync anyway, recorded)",
		d.Until.UTC().Format(time.RFC3339), d.Window, app.Name, app.Namespace))
	return "", true, min(interval, max(time.Until(d.Until)+time.Second, time.Second)), nil
}

// windowOverride is the override annotation when it belongs to the sync
// request being handled (nil otherwise: an old or hand-made one).
func windowOverride(app *kv1.Application) *WindowOverride {
	raw := app.Annotations[kv1.OverrideWindowAnnotation]
	request := pendingSyncRequest(app)
	if raw == "" || request == "" || len(raw) > maxOverrideBytes {
		return nil
	}
	var o WindowOverride
	if err := json.Unmarshal([]byte(raw), &o); err != nil || o.Token != request || o.By == "" || o.Reason == "" {
		return nil
	}
	return &o
}

// adminWindowsTTL is how long the cluster admin's windows are reused: a
// sync attempt reads them, and a push to a repository many Applications
// read must not cost one API request per Application. A change to
// keyless-sync-windows applies within it.
const adminWindowsTTL = 10 * time.Second

// adminWindowCache keeps the last read of keyless-sync-windows' data.
type adminWindowCache struct {
	mu   sync.Mutex
	at   time.Time
	data []byte
}

// adminWindows are the cluster admin's windows for namespace, read from
// the controller's namespace (none without one), at most every
// adminWindowsTTL.
func (r *ApplicationReconciler) adminWindows(ctx context.Context, namespace string) ([]syncwindow.Window, error) {
	if r.approvalNamespace == "" {
		return nil, nil
	}
	c := &r.windowCache
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.at.IsZero() || time.Since(c.at) > adminWindowsTTL {
		cm := &corev1.ConfigMap{}
		err := r.apiReader.Get(ctx, types.NamespacedName{Namespace: r.approvalNamespace, Name: syncwindow.AdminConfigMap}, cm)
		switch {
		case apierrors.IsNotFound(err):
			c.data = nil
		case err != nil:
			return nil, fmt.Errorf("reading the cluster admin's sync windows: %w", err) // not cached: retried
		default:
			c.data = []byte(cm.Data[syncwindow.AdminKey])
		}
		c.at = time.Now()
	}
	if len(c.data) == 0 {
		return nil, nil
	}
	return syncwindow.AdminWindows(c.data, namespace)
}

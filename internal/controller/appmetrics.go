package controller

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

// Labels of the per-Application series.
const (
	labelNamespace = "namespace"
	labelName      = "name"
)

// appMetrics are the per-Application series, in the style of Argo CD's
// argocd_app_info and Flux's gotk_reconcile_*: one info series per
// Application (the old one deleted when a label changes, so a revision
// never leaves a stale series behind), sync durations and results, drift
// reverts and hook runs. Every series of an Application goes with it.
type appMetrics struct {
	info  *prometheus.GaugeVec
	syncs *prometheus.SummaryVec
	drift *prometheus.CounterVec
	hooks *prometheus.CounterVec

	mu   sync.Mutex
	last map[types.NamespacedName]prometheus.Labels
}

func newAppMetrics() *appMetrics {
	return &appMetrics{
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "keyless_application_info",
			Help: "1 for each Application, labelled with its sync and health status, Ready (True/False), the Ready reason and the applied revision (short SHA).",
		}, []string{labelNamespace, labelName, "sync", "health", "ready", "reason", "revision"}),
		// A summary without quantiles: _sum and _count per Application and result.
		syncs: prometheus.NewSummaryVec(prometheus.SummaryOpts{
			Name: "keyless_application_sync_duration_seconds",
			Help: "Duration of each Application's applies (dry-run, apply, waves, prune) by result (success, error).",
		}, []string{labelNamespace, labelName, labelResult}),
		drift: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyless_application_drift_reverted_total", Help: "Changes made in the cluster that self-heal reverted, per Application.",
		}, []string{labelNamespace, labelName}),
		hooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyless_application_hook_runs_total", Help: "Hook runs per Application, phase and result (Succeeded, Failed).",
		}, []string{labelNamespace, labelName, "phase", labelResult}),
		last: map[types.NamespacedName]prometheus.Labels{},
	}
}

// observe sets app's info series from its status.
func (a *appMetrics) observe(app *kv1.Application) {
	ready, reason := "Unknown", ""
	if c := apimeta.FindStatusCondition(app.Status.Conditions, kv1.ReadyCondition); c != nil {
		ready, reason = string(c.Status), c.Reason
	}
	l := prometheus.Labels{
		labelNamespace: app.Namespace, labelName: app.Name,
		"sync": app.Status.Sync.Status, "health": app.Status.Health.Status, "ready": ready, "reason": reason,
		"revision": kv1.ShortSHA(app.Status.LastAppliedRevision),
	}
	key := types.NamespacedName{Namespace: app.Namespace, Name: app.Name}
	a.mu.Lock()
	defer a.mu.Unlock()
	if prev, ok := a.last[key]; ok && !sameLabels(prev, l) {
		a.info.Delete(prev)
	}
	a.last[key] = l
	a.info.With(l).Set(1)
}

func sameLabels(a, b prometheus.Labels) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// observeSync records one apply of app.
func (a *appMetrics) observeSync(app *kv1.Application, start time.Time, err error) {
	a.syncs.WithLabelValues(app.Namespace, app.Name, result(err)).Observe(time.Since(start).Seconds())
}

// observeRecord counts a recorded sync's drift revert and hook runs.
func (a *appMetrics) observeRecord(app *kv1.Application, rec kv1.SyncRecord) {
	if syncEventOf(rec) == kv1.EventDriftReverted {
		a.drift.WithLabelValues(app.Namespace, app.Name).Inc()
	}
	for _, h := range rec.Hooks {
		a.hooks.WithLabelValues(app.Namespace, app.Name, h.Phase, h.Result).Inc()
	}
}

// forget deletes every series of an Application that is gone.
func (a *appMetrics) forget(key types.NamespacedName) {
	match := prometheus.Labels{labelNamespace: key.Namespace, labelName: key.Name}
	a.info.DeletePartialMatch(match)
	a.syncs.DeletePartialMatch(match)
	a.drift.DeletePartialMatch(match)
	a.hooks.DeletePartialMatch(match)
	a.mu.Lock()
	delete(a.last, key)
	a.mu.Unlock()
}

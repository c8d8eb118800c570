package controller

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/credential"
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
	// hosts labels Git latency by the hosts Applications read from.
	hosts *gitHosts

	mu   sync.Mutex
	last map[types.NamespacedName]prometheus.Labels
}

func newAppMetrics(gitDuration *prometheus.HistogramVec) *appMetrics {
	return &appMetrics{
		hosts: newGitHosts(gitDuration, maxGitHostSeries),
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
	a.hosts.release(key)
	a.mu.Lock()
	delete(a.last, key)
	a.mu.Unlock()
}

// useRepo notes that the Application key reads from repoURL, before its
// Git operations: its host gets its own series of
// keyless_git_operation_duration_seconds (within maxGitHostSeries), and the
// host it read from before loses its series if no other Application reads
// from it any more.
func (a *appMetrics) useRepo(key types.NamespacedName, repoURL string) {
	a.hosts.use(key, repoURL)
}

// maxGitHostSeries bounds the hosts keyless_git_operation_duration_seconds
// has series for: whoever may edit an Application chooses its repoURL.
const maxGitHostSeries = 64

// otherHost is the host label of Git operations on a host without its own
// series: one no Application reads from, one beyond maxGitHostSeries, or
// one that cannot be told from its URL.
const otherHost = "other"

// gitHosts bounds the host label of a Git latency histogram: a host has
// its own series while an Application of this controller reads from it
// (they are deleted with the last one), at most max hosts do, and every
// other operation is counted under host="other". Whoever edits an
// Application's repoURL 60 times leaves one series, not 60.
type gitHosts struct {
	duration *prometheus.HistogramVec
	max      int

	mu sync.Mutex
	// byApp is the host each Application reads from.
	byApp map[types.NamespacedName]string
	// apps counts the Applications reading from each host.
	apps map[string]int
	// labelled are the hosts with their own series (at most max).
	labelled map[string]bool
}

func newGitHosts(duration *prometheus.HistogramVec, maxHosts int) *gitHosts {
	return &gitHosts{duration: duration, max: maxHosts,
		byApp: map[types.NamespacedName]string{}, apps: map[string]int{}, labelled: map[string]bool{}}
}

// use records that key reads from repoURL's host, releasing the host it
// read from before.
func (g *gitHosts) use(key types.NamespacedName, repoURL string) {
	host, _ := credential.Host(repoURL)
	g.mu.Lock()
	defer g.mu.Unlock()
	if prev, ok := g.byApp[key]; ok {
		if prev == host {
			return
		}
		g.releaseLocked(prev)
	}
	g.byApp[key] = host
	g.apps[host]++
}

// release forgets key (gone, or moved to another shard).
func (g *gitHosts) release(key types.NamespacedName) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if prev, ok := g.byApp[key]; ok {
		delete(g.byApp, key)
		g.releaseLocked(prev)
	}
}

func (g *gitHosts) releaseLocked(host string) {
	if g.apps[host]--; g.apps[host] > 0 {
		return
	}
	delete(g.apps, host)
	if g.labelled[host] {
		delete(g.labelled, host)
		g.duration.DeletePartialMatch(prometheus.Labels{labelHost: host})
	}
}

// observe records one Git operation of d on url. The lock is held while
// observing, so a series is never re-created after its last Application
// deleted it.
func (g *gitHosts) observe(op, url string, d time.Duration) {
	host, _ := credential.Host(url)
	g.mu.Lock()
	defer g.mu.Unlock()
	label := otherHost
	if host != "" && host != otherHost && g.apps[host] > 0 && (g.labelled[host] || len(g.labelled) < g.max) {
		g.labelled[host] = true
		label = host
	}
	g.duration.WithLabelValues(op, label).Observe(d.Seconds())
}

package controller

import (
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/keyless-cd/keyless/internal/version"
)

// metrics are keyless's Prometheus metrics, served on --metrics-bind-address.
type metrics struct {
	reconciles   *prometheus.CounterVec
	syncDuration *prometheus.HistogramVec
	// renderDuration is a render's wall time, checkout and child process
	// included (renders served from the per-Application cache are not counted).
	renderDuration *prometheus.HistogramVec
	// rendersSkipped counts new commits that changed none of an
	// Application's render inputs: no render, no dry run, no write.
	rendersSkipped prometheus.Counter
	gitOps         *prometheus.CounterVec
	// gitDuration is labelled by host through apps.hosts: bounded, and a
	// host's series go with the last Application reading from it.
	gitDuration *prometheus.HistogramVec
	driftEvents prometheus.Counter
	// deliveries counts commit statuses and notifications by kind
	// (deliveryCommitStatus, deliveryNotification) and result (success,
	// retry, failed, dropped).
	deliveries *prometheus.CounterVec
	// apps are the per-Application series (appmetrics.go).
	apps *appMetrics
}

// labelResult is the label every keyless counter splits results by.
const labelResult = "result"

// labelHost is the repository host label of keyless_git_operation_duration_seconds.
const labelHost = "host"

// Kinds of keyless_deliveries_total.
const (
	deliveryCommitStatus = "commitStatus"
	deliveryNotification = "notification"
)

var (
	metricsOnce   sync.Once
	sharedMetrics *metrics
)

// newMetrics returns the process's metrics, registered once.
func newMetrics() *metrics {
	metricsOnce.Do(func() { sharedMetrics = buildMetrics() })
	return sharedMetrics
}

func buildMetrics() *metrics {
	m := &metrics{
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyless_reconcile_total", Help: "Application reconciles by result (success, error).",
		}, []string{labelResult}),
		syncDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "keyless_sync_duration_seconds", Help: "Duration of applies (dry-run, apply, prune).",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
		}, []string{labelResult}),
		rendersSkipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyless_renders_skipped_total", Help: "New commits that changed none of the files an Application's render read: status moved, nothing rendered, dry-run or written.",
		}),
		renderDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "keyless_render_duration_seconds", Help: "Duration of renders (checkout and render process), by result.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
		}, []string{labelResult}),
		gitOps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyless_git_operations_total", Help: "Git ls-remote and fetch operations by result.",
		}, []string{"op", labelResult}),
		gitDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "keyless_git_operation_duration_seconds", Help: fmt.Sprintf("Duration of Git ls-remote and fetch, by repository host (%q: a host no Application reads from, or beyond %d hosts).", otherHost, maxGitHostSeries),
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}, []string{"op", labelHost}),
		driftEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyless_drift_events_total", Help: "Changes to managed objects by someone other than keyless.",
		}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyless_deliveries_total", Help: "Commit statuses and notifications sent, by kind and result (success, retry, failed, dropped).",
		}, []string{"kind", labelResult}),
	}
	m.apps = newAppMetrics(m.gitDuration)
	ctrlmetrics.Registry.MustRegister(buildInfo(), m.reconciles, m.syncDuration, m.renderDuration, m.rendersSkipped, m.gitOps, m.gitDuration, m.driftEvents, m.deliveries,
		m.apps.info, m.apps.syncs, m.apps.drift, m.apps.hooks)
	return m
}

// buildInfo is keyless_build_info: 1, labelled with the running binary's
// version, Go version and platform (as Prometheus's own *_build_info), so
// dashboards and alerts see which controller version runs where.
func buildInfo() prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "keyless_build_info", Help: "1, labelled with the controller's version, Go version and platform.",
		ConstLabels: prometheus.Labels{"version": version.Version(), "goversion": runtime.Version(), "platform": runtime.GOOS + "/" + runtime.GOARCH},
	})
	g.Set(1)
	return g
}

func result(err error) string {
	if err != nil {
		return "error"
	}
	return "success"
}

func (m *metrics) observeReconcile(_ time.Time, err error) {
	m.reconciles.WithLabelValues(result(err)).Inc()
}

func (m *metrics) observeSync(start time.Time, err error) {
	m.syncDuration.WithLabelValues(result(err)).Observe(time.Since(start).Seconds())
}

func (m *metrics) observeRender(start time.Time, err error) {
	m.renderDuration.WithLabelValues(result(err)).Observe(time.Since(start).Seconds())
}

// observeGit is gitsource's Observe hook.
func (m *metrics) observeGit(op, url string, d time.Duration, err error) {
	m.gitOps.WithLabelValues(op, result(err)).Inc()
	m.apps.hosts.observe(op, url, d)
}

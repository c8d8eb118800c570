package controller

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/sigstore/sigstore-go/pkg/root"
	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/discovery"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/celhealth"
	"github.com/keyless-cd/keyless/internal/egress"
	"github.com/keyless-cd/keyless/internal/engine"
	"github.com/keyless-cd/keyless/internal/gitsource"
	"github.com/keyless-cd/keyless/internal/helmrepo"
	"github.com/keyless-cd/keyless/internal/ledger"
	"github.com/keyless-cd/keyless/internal/ledgersink"
	"github.com/keyless-cd/keyless/internal/oidc"
	"github.com/keyless-cd/keyless/internal/renderproc"
	"github.com/keyless-cd/keyless/internal/webhook"
)

// Options configure the controller. Namespaces is required.
type Options struct {
	// Namespaces are the only namespaces watched and cached.
	Namespaces []string
	// MetricsBindAddress serves Prometheus metrics ("0" disables). Default ":8080".
	MetricsBindAddress string
	// HealthProbeBindAddress serves /healthz and /readyz ("0" disables). Default ":8081".
	HealthProbeBindAddress string
	// PprofBindAddress serves Go's /debug/pprof profiles, for diagnosing
	// the controller itself. Default "" (off). A heap profile holds what
	// the process holds, decrypted Secrets included: bind it to loopback
	// (kubectl port-forward), never to a Service.
	PprofBindAddress string
	// LeaderElect runs one active replica, with a Lease in LeaderElectionNamespace.
	LeaderElect             bool
	LeaderElectionNamespace string
	// ControllerNamespace is the controller's own namespace, where the
	// approval records of out-of-namespace objects are read and pending
	// ones stored (spec.syncPolicy.outOfNamespace: approve). It must not
	// be one of Namespaces: their admins could forge approvals. Default ""
	// (Applications asking for approvals are refused, naming the flag).
	ControllerNamespace string
	// HealthCheckExprs are the controller-wide CEL health entries (Flux's
	// healthCheckExprs format, --health-check-exprs): over keyless's
	// built-in library, under each Application's spec.healthCheckExprs.
	HealthCheckExprs []celhealth.Expressions
	// LedgerFile, with LedgerKey, is the tamper-evident ledger every sync
	// is appended to (internal/ledger, --ledger-file): verified at start,
	// never appended to when broken. Default "" (none).
	LedgerFile string
	LedgerKey  ed25519.PrivateKey
	// LedgerSink, when set (with LedgerFile), is an S3 object store the
	// ledger's records are copied to, one object each, for long retention
	// (internal/ledgersink).
	LedgerSink *ledgersink.Options
	// Shard, when set, makes this controller own only the Applications
	// labelled kv1.ShardLabel=Shard; unset, it owns those without the label.
	// Each shard elects its own leader. Default "" (the unlabelled ones).
	Shard string
	// ShardNamespaces, for the unsharded controller, are the namespaces each
	// shard serves; an Application labelled for a shard that does not serve
	// its namespace is then reported (Stalled, ShardRefused) instead of
	// left alone. Default none (no report).
	ShardNamespaces ShardNamespaces
	// Concurrency is how many Applications reconcile at once. Default 4.
	Concurrency int
	// MaxConcurrentPerNamespace is how many of those workers one namespace's
	// Applications may hold while another namespace's wait (fairqueue.go).
	// Default Concurrency/2, at least 1.
	MaxConcurrentPerNamespace int
	// DefaultInterval applies to Applications without spec.interval. Default 3m.
	DefaultInterval time.Duration
	// WebhookBindAddress serves /hooks/github and /hooks/gitlab ("" disables).
	WebhookBindAddress string
	// WebhookListener, when set, is used instead of WebhookBindAddress: a
	// listener the caller already holds (so its port cannot be taken between
	// choosing and binding it). Run closes it when it returns.
	WebhookListener net.Listener
	// WebhookSecret, when set, is both the GitHub HMAC key and the GitLab
	// token of the controller-wide paths (prefer the two separate fields).
	WebhookSecret []byte
	// WebhookGitHubSecret is the HMAC key of /hooks/github, and
	// WebhookGitLabToken the token of /hooks/gitlab; they win over
	// WebhookSecret. Each is checked at start: the shipped placeholder and
	// guessable values are refused. Per-namespace paths
	// (/hooks/<forge>/<ns>) use the namespace's keyless-webhook Secret.
	WebhookGitHubSecret, WebhookGitLabToken []byte
	// WebhookTLSCertFile and WebhookTLSKeyFile, when set, make the webhook
	// listener serve HTTPS.
	WebhookTLSCertFile, WebhookTLSKeyFile string
	// CacheDir holds the Git cache. Default: a temporary directory.
	CacheDir string
	// GitTimeout bounds each ls-remote and fetch. Default 60s.
	GitTimeout time.Duration
	// HookTimeout bounds how long each wave's objects and hooks may take to
	// become ready (a migration Job to complete) before the sync stops with
	// a failure; the sync holds a worker meanwhile. Default
	// engine.DefaultStepTimeout (5m).
	HookTimeout time.Duration
	// SyncTimeout bounds one sync's apply: every wave, hook and the prune;
	// past it the sync stops and is retried with backoff. Default
	// DefaultSyncTimeout (10m); never shorter than HookTimeout.
	SyncTimeout time.Duration
	// MaxWaves refuses a render with more waves than this (phases × sync
	// waves, SyncFail included) before anything is written. Default
	// DefaultMaxWaves (32).
	MaxWaves int
	// CacheGCInterval is how often the cache of repositories no Application
	// reads any more is deleted. Default 10m.
	CacheGCInterval time.Duration
	// CapabilitiesTTL is how long the cluster's version and API versions
	// (Helm's .Capabilities) are reused before discovery is asked again: a
	// CRD installed since shows in a chart's render within it. Default 30s.
	CapabilitiesTTL time.Duration
	// Render bounds each render (memory, time, output); every render runs in
	// its own child process. Zero fields take renderproc's defaults.
	Render renderproc.Options
	// AllowInsecureHTTP lets Git credentials travel over plain http://.
	// Default false; for loopback tests and the demo only.
	AllowInsecureHTTP bool
	// TrustPolicy is the FederationPolicy (--trust-policy) whose pipelines
	// must have signed the OCI artifacts deployed into their namespaces.
	// Nil: each Application's spec.source.verify decides.
	TrustPolicy *oidc.FederationPolicy
	// TrustedRoot is the Sigstore trusted root (--trusted-root) keyless
	// signatures are checked against: Sigstore's public one or a private
	// Fulcio's, timestamp authority's and Rekor's. Required with a
	// TrustPolicy naming pipelines.
	TrustedRoot *root.TrustedRoot
	// EgressDenyCIDRs are refused to commit statuses and notifications on
	// top of egress's built-in rules: set the cluster's pod and service
	// ranges. Default none.
	EgressDenyCIDRs []netip.Prefix
	// EgressAllowCIDRs are let through although EgressDenyCIDRs or a
	// default refusal covers them (a forge inside the cluster). Default none.
	EgressAllowCIDRs []netip.Prefix
	// AuditOut receives one JSON line per sync. Default os.Stdout.
	AuditOut io.Writer
	// Logger is the controller's logger.
	Logger logr.Logger
	// Ready, when set, is closed once the manager runs (tests).
	Ready chan<- struct{}
}

// withDefaults checks opts and fills in the documented defaults, in one place.
func (opts Options) withDefaults() (Options, error) {
	if len(opts.Namespaces) == 0 {
		return opts, errors.New("at least one namespace is required (--namespaces): keyless watches and caches nothing else")
	}
	if err := ValidateShard(opts.Shard); err != nil {
		return opts, err
	}
	if opts.Shard != "" && len(opts.ShardNamespaces) > 0 {
		return opts, errors.New("--shard-namespaces is for the unsharded controller (which reports misplaced shard labels); a shard serves its --namespaces")
	}
	if len(opts.WebhookGitHubSecret) == 0 {
		opts.WebhookGitHubSecret = opts.WebhookSecret
	}
	if len(opts.WebhookGitLabToken) == 0 {
		opts.WebhookGitLabToken = opts.WebhookSecret
	}
	for name, secret := range map[string][]byte{"GitHub webhook secret": opts.WebhookGitHubSecret, "GitLab webhook token": opts.WebhookGitLabToken} {
		if len(secret) == 0 {
			continue
		}
		if err := webhook.CheckSecret(secret); err != nil {
			return opts, fmt.Errorf("%s: %w", name, err)
		}
	}
	if (opts.WebhookTLSCertFile == "") != (opts.WebhookTLSKeyFile == "") {
		return opts, errors.New("--webhook-tls-cert-file and --webhook-tls-key-file go together")
	}
	if opts.MetricsBindAddress == "" {
		opts.MetricsBindAddress = ":8080"
	}
	if opts.HealthProbeBindAddress == "" {
		opts.HealthProbeBindAddress = ":8081"
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	if opts.DefaultInterval == 0 {
		opts.DefaultInterval = 3 * time.Minute
	}
	if opts.AuditOut == nil {
		opts.AuditOut = os.Stdout
	}
	if opts.CacheGCInterval <= 0 {
		opts.CacheGCInterval = 10 * time.Minute
	}
	if opts.CapabilitiesTTL <= 0 {
		opts.CapabilitiesTTL = 30 * time.Second
	}
	if opts.LeaderElectionNamespace == "" {
		opts.LeaderElectionNamespace = opts.Namespaces[0]
	}
	if opts.HookTimeout <= 0 {
		opts.HookTimeout = engine.DefaultStepTimeout
	}
	if opts.SyncTimeout <= 0 {
		opts.SyncTimeout = DefaultSyncTimeout
	}
	if err := checkSyncTimeout(opts.SyncTimeout, opts.HookTimeout); err != nil {
		return opts, err
	}
	if opts.MaxWaves <= 0 {
		opts.MaxWaves = DefaultMaxWaves
	}
	if opts.MaxConcurrentPerNamespace <= 0 {
		opts.MaxConcurrentPerNamespace = max(opts.Concurrency/2, 1)
	}
	return opts, nil
}

// Run runs the controller until ctx ends.
func Run(ctx context.Context, cfg *rest.Config, opts Options) error {
	if opts.WebhookListener != nil {
		defer func() { _ = opts.WebhookListener.Close() }() // also when Run fails before serving
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return err
	}
	serveWebhook := opts.WebhookBindAddress != "" || opts.WebhookListener != nil
	cacheDir := opts.CacheDir
	if cacheDir == "" {
		dir, err := os.MkdirTemp("", "keyless-git-cache-")
		if err != nil {
			return err
		}
		defer func() { _ = os.RemoveAll(dir) }()
		cacheDir = dir
	}

	// client-go's default of 5 QPS (controller-runtime: 20) throttles syncing
	// many Applications; API Priority and Fairness protects the server.
	if cfg.QPS == 0 && cfg.RateLimiter == nil {
		cfg = rest.CopyConfig(cfg)
		cfg.QPS, cfg.Burst = 200, 400
	}
	scheme, nsConfig, mgr, err := newManager(cfg, opts)
	if err != nil {
		return err
	}

	// Managed objects are watched metadata-only through their own cache,
	// limited to the namespaces and to objects carrying the inventory label.
	managed, err := labels.NewRequirement(engine.InventoryLabel, selection.Exists, nil)
	if err != nil {
		return err
	}
	managedCache, err := cache.New(cfg, cache.Options{
		Scheme: scheme, Mapper: mgr.GetRESTMapper(), HTTPClient: mgr.GetHTTPClient(),
		DefaultNamespaces:    nsConfig,
		DefaultLabelSelector: labels.NewSelector().Add(*managed),
		DefaultTransform:     keepWritersOnly,
	})
	if err != nil {
		return err
	}
	if err := mgr.Add(managedCache); err != nil {
		return err
	}

	m := newMetrics()
	src, err := gitsource.New(gitsource.Options{CacheDir: cacheDir, Observe: m.observeGit, Timeout: opts.GitTimeout})
	if err != nil {
		return err
	}
	// No spare process: the runs with one were no faster on the 100-app
	// burst nor, beyond the spread, on a push (docs/benchmarks.md).
	renderer, err := renderproc.New(opts.Render)
	if err != nil {
		return err
	}
	defer renderer.Close()
	drift := newDriftTracker(managedCache, m, &watchAccess{client: mgr.GetClient(), mapper: mgr.GetRESTMapper(), namespaces: opts.Namespaces})
	r := &ApplicationReconciler{
		client: mgr.GetClient(), apiReader: mgr.GetAPIReader(), source: src, recorder: mgr.GetEventRecorder("keyless-controller"),
		defaultInterval: opts.DefaultInterval, audit: &auditLog{w: opts.AuditOut}, drift: drift, metrics: m,
		renderer: renderer, allowInsecureHTTP: opts.AllowInsecureHTTP, hookTimeout: opts.HookTimeout,
		trustPolicy: opts.TrustPolicy, trustedRoot: opts.TrustedRoot,
		syncTimeout: opts.SyncTimeout, maxWaves: opts.MaxWaves,
		engines: newEnginePool(cfg, mgr.GetRESTMapper()), renders: newRenderCache(), changedFirst: newChangedFirst(), applies: newApplyGate(), shard: opts.Shard, shards: opts.ShardNamespaces, stale: newStaleReads(),
		namespaces: opts.Namespaces, approvalNamespace: opts.ControllerNamespace,
	}
	healthDefaults, err := DefaultHealth(opts.HealthCheckExprs)
	if err != nil {
		return err
	}
	r.health = newHealthCheckers(healthDefaults)
	if opts.LedgerFile != "" {
		lw, closer, err := ledger.Open(opts.LedgerFile, opts.LedgerKey)
		if err != nil {
			return err
		}
		defer func() { _ = closer.Close() }()
		r.ledger = lw
		if opts.LedgerSink != nil {
			store, err := ledgersink.New(ctx, *opts.LedgerSink)
			if err != nil {
				return err
			}
			r.ledgerShipper = ledgersink.NewShipper(store, opts.LedgerFile, mgr.GetLogger().WithName("ledger-sink"))
			if err := mgr.Add(r.ledgerShipper); err != nil {
				return err
			}
		}
	}
	r.syncs = newRunningSyncs()
	r.retries = newSyncRetries()
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	r.capabilities = newCapabilitiesCache(disc, opts.CapabilitiesTTL)
	eg := egress.Options{AllowLoopback: opts.AllowInsecureHTTP, DenyCIDRs: opts.EgressDenyCIDRs, AllowCIDRs: opts.EgressAllowCIDRs}
	r.chartCacheDir = filepath.Join(cacheDir, "helm")
	if r.charts, err = helmrepo.New(helmrepo.Options{CacheDir: r.chartCacheDir, AllowInsecureHTTP: opts.AllowInsecureHTTP,
		Timeout: opts.GitTimeout, IndexTTL: min(opts.DefaultInterval, time.Minute), Egress: eg}); err != nil {
		return err
	}
	r.commits = newCommitReporter(mgr.GetAPIReader(), r.recorder, m, mgr.GetLogger(), eg)
	r.approvals = newForgeApprovals(eg)
	r.notifier = newNotifier(mgr.GetAPIReader(), r.recorder, m, mgr.GetLogger(), eg)
	if err := mgr.Add(r.commits.queue); err != nil {
		return err
	}
	if err := mgr.Add(r.notifier.queue); err != nil {
		return err
	}
	triggers := make(chan event.GenericEvent, 256)
	if err := r.SetupWithManager(ctx, mgr, triggers, opts.Concurrency, opts.MaxConcurrentPerNamespace); err != nil {
		return err
	}

	if serveWebhook {
		recv := newWebhookReceiver(&webhookTargets{client: mgr.GetClient(), secrets: mgr.GetAPIReader(), source: src,
			githubSecret: opts.WebhookGitHubSecret, gitlabToken: opts.WebhookGitLabToken, queue: triggers, poke: r.syncs.poke}, opts.Namespaces)
		if err := mgr.Add(&webhookRunnable{addr: opts.WebhookBindAddress, listener: opts.WebhookListener, h: recv,
			certFile: opts.WebhookTLSCertFile, keyFile: opts.WebhookTLSKeyFile}); err != nil {
			return err
		}
	}
	if err := mgr.Add(&cacheGC{client: mgr.GetClient(), source: src, interval: opts.CacheGCInterval, charts: r.charts, chartDir: r.chartCacheDir}); err != nil {
		return err
	}
	if opts.Ready != nil {
		if err := mgr.Add(readySignal(opts.Ready)); err != nil {
			return err
		}
	}
	return mgr.Start(ctx)
}

// newManager builds the controller-runtime manager: the scheme, caches
// restricted to opts.Namespaces, metrics, probes and leader election.
func newManager(cfg *rest.Config, opts Options) (*runtime.Scheme, map[string]cache.Config, ctrl.Manager, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, nil, nil, err
	}
	if err := kv1.AddToScheme(scheme); err != nil {
		return nil, nil, nil, err
	}
	nsConfig := map[string]cache.Config{}
	for _, ns := range opts.Namespaces {
		nsConfig[ns] = cache.Config{}
	}
	opts.Logger = capVerbosity(opts.Logger, maxLogVerbosity)
	ctrl.SetLogger(opts.Logger)
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: scheme,
		Logger: opts.Logger,
		Cache: cache.Options{DefaultNamespaces: nsConfig, ByObject: map[client.Object]cache.ByObject{
			&kv1.Application{}: applicationCache(opts.Shard, opts.Namespaces, opts.ShardNamespaces)}},
		Metrics:                 metricsserver.Options{BindAddress: opts.MetricsBindAddress},
		HealthProbeBindAddress:  opts.HealthProbeBindAddress,
		PprofBindAddress:        opts.PprofBindAddress,
		LeaderElection:          opts.LeaderElect,
		LeaderElectionID:        leaderElectionID(opts.Shard),
		LeaderElectionNamespace: opts.LeaderElectionNamespace,
		// Lease timing: controller-runtime's defaults (15s lease, 10s renew
		// deadline, 2s retry), so a killed leader is replaced within ~15s. On
		// SIGTERM the lease is released at once: the standby takes over in
		// one retry period.
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("creating manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, nil, nil, err
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return nil, nil, nil, err
	}

	return scheme, nsConfig, mgr, nil
}

// SetupWithManager registers the reconciler with mgr: Applications (spec
// and annotation changes), pushes and other triggers sent on triggers, and
// concurrency workers, perNamespace of which one namespace may hold while
// another waits (fairQueue). The drift tracker enqueues through the
// controller built here.
func (r *ApplicationReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager, triggers <-chan event.GenericEvent, concurrency, perNamespace int) error {
	if err := indexDependsOn(ctx, mgr); err != nil {
		return err
	}
	c, err := builder.ControllerManagedBy(mgr).
		For(&kv1.Application{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}, shardLabelChanged))).
		WatchesRawSource(source.Channel(triggers, &handler.EnqueueRequestForObject{})).
		// A push's changed Applications before the others (changedfirst.go).
		WatchesRawSource(source.Channel(r.changedFirst.urgent, enqueueUrgent)).
		// spec.dependsOn: a dependency's readiness wakes its dependents.
		Watches(&kv1.Application{}, handler.EnqueueRequestsFromMapFunc(r.dependentsOf), builder.WithPredicates(readinessChanged)).
		// One manager per process; tests restart it in-process.
		WithOptions(controller.Options{MaxConcurrentReconciles: concurrency, SkipNameValidation: ptr.To(true), RateLimiter: retryRateLimiter(),
			NewQueue: fairQueueFor(perNamespace)}).
		Named("application").
		Build(r)
	if err != nil {
		return fmt.Errorf("creating controller: %w", err)
	}
	r.drift.setController(c)
	return nil
}

// Retries of a failed reconcile (Git or the API server unreachable) back
// off from retryBaseDelay, doubling, to at most retryMaxDelay: after an
// outage of any length the Application recovers within retryMaxDelay.
// controller-runtime's default grows to 16 minutes.
const (
	retryBaseDelay = 100 * time.Millisecond
	retryMaxDelay  = time.Minute
)

// retryRateLimiter is the reconcile queue's rate limiter: per-item
// exponential backoff capped at retryMaxDelay, and client-go's overall
// bucket (10/s, burst 100) as in controller-runtime's default.
func retryRateLimiter() workqueue.TypedRateLimiter[reconcile.Request] {
	return workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](retryBaseDelay, retryMaxDelay),
		&workqueue.TypedBucketRateLimiter[reconcile.Request]{Limiter: rate.NewLimiter(rate.Limit(10), 100)},
	)
}

// webhookRunnable runs the receiver until the manager stops, on listener or
// else on addr. It does not need leadership: a trigger enqueues on whichever
// replica leads.
type webhookRunnable struct {
	addr     string
	listener net.Listener
	h        http.Handler
	// certFile and keyFile, when set, serve HTTPS.
	certFile, keyFile string
}

func (w *webhookRunnable) NeedLeaderElection() bool { return false }

func (w *webhookRunnable) Start(ctx context.Context) error {
	l := w.listener
	if l == nil {
		var err error
		if l, err = net.Listen("tcp", w.addr); err != nil {
			return fmt.Errorf("webhook receiver: %w", err)
		}
	}
	srv := webhook.NewServer(w.h, webhook.ServerOptions{})
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	var err error
	if w.certFile != "" {
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		err = srv.ServeTLS(l, w.certFile, w.keyFile)
	} else {
		err = srv.Serve(l)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("webhook receiver: %w", err)
	}
	return nil
}

type readySignal chan<- struct{}

func (r readySignal) Start(context.Context) error {
	close(r)
	return nil
}

// shardSelector selects the Applications shard owns: those labelled
// kv1.ShardLabel=shard, or, for the unnamed shard, those without the label.
// An Application relabelled to another shard leaves this controller's cache
// (a delete event: it is forgotten, not finalized) and enters the other's.
func shardSelector(shard string) labels.Selector {
	op := selection.Equals
	values := []string{shard}
	if shard == "" {
		op, values = selection.DoesNotExist, nil
	}
	req, err := labels.NewRequirement(kv1.ShardLabel, op, values)
	if err != nil {
		// ValidateShard ran first; a key that is no label value cannot get here.
		panic(err)
	}
	return labels.NewSelector().Add(*req)
}

// leaderElectionID is the Lease name: one per shard, so the shards' replicas
// elect a leader each instead of one for all.
func leaderElectionID(shard string) string {
	if shard == "" {
		return "keyless-controller"
	}
	return "keyless-controller-" + shard
}

// ValidateShard checks that shard can be a label value (and a Lease name suffix).
func ValidateShard(shard string) error {
	if shard == "" {
		return nil
	}
	if errs := validation.IsDNS1123Label(shard); len(errs) > 0 {
		return fmt.Errorf("--shard %q: %s", shard, strings.Join(errs, "; "))
	}
	return nil
}

// Package controller reconciles Applications: it pulls each one's Git
// revision, renders it and converges the Application's own namespace with the
// shared engine, impersonating the Application's deployer ServiceAccount. Drift
// is seen through metadata-only watches, new commits through ls-remote polling
// and webhooks.
package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/engine"
	"github.com/keyless-cd/keyless/internal/forge"
	"github.com/keyless-cd/keyless/internal/gitsource"
	"github.com/keyless-cd/keyless/internal/helmrepo"
	"github.com/keyless-cd/keyless/internal/ledger"
	"github.com/keyless-cd/keyless/internal/ledgersink"
	"github.com/keyless-cd/keyless/internal/lifecycle"
	"github.com/keyless-cd/keyless/internal/ociartifact"
	"github.com/keyless-cd/keyless/internal/oidc"
	"github.com/keyless-cd/keyless/internal/render"
)

// Finalizer makes deleting an Application delete what it deployed.
const Finalizer = "keyless.dev/finalizer"

// progressingPoll is how soon health is read again while objects roll out
// and their status updates may not be seen as events (a kind not watched).
const progressingPoll = 2 * time.Second

// progressingFallback is how soon health is read again while objects roll
// out and every kind of theirs is watched: their status updates re-check it
// as they come, so the poll is only a safety net. Polling every 2 s as well
// tripled the health reads of a 100-Application burst.
const progressingFallback = 30 * time.Second

// ApplicationReconciler reconciles Application objects. Run builds it with
// every field set.
type ApplicationReconciler struct {
	// shard is Options.Shard: the value of kv1.ShardLabel this controller owns.
	shard string
	// shards are the namespaces each shard serves (unsharded controller only).
	shards ShardNamespaces
	// stale tells a cached Application older than keyless's own last write.
	stale  *staleReads
	client client.Client
	// apiReader reads Secrets uncached, so the controller needs only get on them.
	apiReader       client.Reader
	source          *gitsource.Source
	recorder        recorder.EventRecorder
	defaultInterval time.Duration
	audit           *auditLog
	drift           *driftTracker
	metrics         *metrics
	// allowInsecureHTTP lets credentials travel over plain http:// (loopback
	// tests and the demo only).
	allowInsecureHTTP bool
	// renderer renders a checkout; the controller gives every render its own
	// bounded child process (renderproc), so no render can crash or stall it.
	renderer Renderer
	// capabilities are the cluster's version and API versions, for Helm's
	// .Capabilities (discovered, cached for Options.CapabilitiesTTL).
	capabilities *capabilitiesCache
	// charts fetches the dependencies of charts that are not vendored
	// (helm dependency build, for the offline render child).
	charts *helmrepo.Fetcher
	// chartCacheDir holds the charts: archives by digest, unpacked charts.
	chartCacheDir string
	// trustPolicy is the FederationPolicy of --trust-policy (nil: none):
	// the pipelines it names for a namespace must have signed the OCI
	// artifacts deployed there; trustedRoot (--trusted-root) is the
	// Sigstore trusted root their certificates are checked against.
	trustPolicy *oidc.FederationPolicy
	trustedRoot *root.TrustedRoot
	// artifactLimits bound an OCI artifact's manifest, layer and unpacked
	// tree (zero: ociartifact's defaults, a checkout's).
	artifactLimits ociartifact.Limits
	// hookTimeout bounds each wave's wait (engine.ApplyOptions.StepTimeout);
	// syncTimeout a whole sync's apply, maxWaves its waves (syncdeadline.go).
	hookTimeout, syncTimeout time.Duration
	maxWaves                 int
	// engines impersonate each Application's deployer; renders keeps each
	// Application's last render. Both forget an Application when it goes.
	engines *enginePool
	renders *renderCache
	// changedFirst queues ahead the Applications a push changed the
	// render inputs of (changedfirst.go).
	changedFirst *changedFirst
	// applies makes status-only passes wait while an apply runs (yield.go).
	applies *applyGate
	// namespaces are Options.Namespaces; approvalNamespace is the
	// controller's own (Options.ControllerNamespace), where approval
	// records of out-of-namespace objects are read (approval.go).
	namespaces        []string
	approvalNamespace string
	// health compiles each Application's CEL health once per generation.
	health *healthCheckers
	// syncs are the syncs in progress, which a webhook push pokes.
	syncs *runningSyncs
	// retries count failed syncs for spec.syncPolicy.retry.
	retries *syncRetries
	// ledger, when set, gets a signed, chained record of every sync.
	ledger *ledger.Writer
	// ledgerShipper copies the ledger to an object store (nil: none).
	ledgerShipper *ledgersink.Shipper
	// windowCache keeps the cluster admin's sync windows (syncwindows.go).
	windowCache adminWindowCache
	// commits reports sync results on their commits at the forge;
	// notifier sends notifications. Both deliver off the reconcile path.
	commits *commitReporter
	// approvals asks forges about spec.source.verify.approvals.
	approvals *forgeApprovals
	notifier  *notifier
}

// Renderer renders a directory of a checkout into objects.
type Renderer interface {
	Render(ctx context.Context, opts render.Options) (*render.Result, error)
}

// Reconcile syncs one Application. Order: get → finalizer → suspend → spec
// checks → source (ls-remote; fetch only on change) → render (cached by commit)
// → engine apply as the deployer (prune per policy) → health → status.
func (r *ApplicationReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	start := time.Now()
	r.applies.picked(req.NamespacedName)
	app := &kv1.Application{}
	if err := r.client.Get(ctx, req.NamespacedName, app); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if r.stale.isStale(req.NamespacedName, app.ResourceVersion) {
		// The cache has not seen our last status write yet: read past it.
		if err := r.apiReader.Get(ctx, req.NamespacedName, app); err != nil {
			if apierrors.IsNotFound(err) {
				r.forget(req.NamespacedName)
				return ctrl.Result{}, nil
			}
			return ctrl.Result{}, err
		}
		if !r.owns(app) && r.shardRefusal(app) == "" {
			r.forget(req.NamespacedName) // moved to another shard meanwhile
			return ctrl.Result{}, nil
		}
	}
	defer func() { r.metrics.observeReconcile(start, retErr) }()
	// A `keyless sync` request is acknowledged by the pass that saw it,
	// whatever its outcome (suspended, invalid, a Git, render or apply
	// failure, refused by the shard): the conditions and history written
	// with the acknowledgement are its answer, and `keyless sync` prints it.
	request := pendingSyncRequest(app)
	// spec.sources: its rendered entry becomes spec.source in memory (only
	// the status is ever written back); validateSpec reports a bad one.
	_ = app.Spec.UseRenderedSource()

	if msg := r.shardRefusal(app); msg != "" && !r.cleansUp(app) {
		// Not this controller's: say so, touch nothing else (no finalizer).
		// One it synced before the label moved it is still cleaned up when
		// deleted: its objects are this controller's doing.
		before := app.DeepCopy()
		setStalled(app, ReasonShardRefused, msg)
		acknowledge(app, request)
		return ctrl.Result{}, r.patchStatus(ctx, before, app)
	}
	if !app.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, app)
	}
	if !controllerutil.ContainsFinalizer(app, Finalizer) {
		patch := client.MergeFrom(app.DeepCopy())
		replaced := app.ResourceVersion
		controllerutil.AddFinalizer(app, Finalizer)
		if err := r.client.Patch(ctx, app, patch); err != nil {
			return ctrl.Result{}, fmt.Errorf("adding finalizer: %w", err)
		}
		r.stale.wrote(req.NamespacedName, replaced)
	}
	before := app.DeepCopy()
	defer func() {
		acknowledge(app, request)
		if err := r.patchStatus(ctx, before, app); err != nil && retErr == nil {
			retErr = err
		}
		r.commits.report(app)
		r.metrics.apps.observe(app)
	}()

	if app.Spec.Suspend {
		setReady(app, false, ReasonSuspended, "suspended: spec.suspend is true")
		app.Status.ObservedGeneration = app.Generation
		return ctrl.Result{}, nil
	}
	if err := validateSpec(app); err != nil {
		setStalled(app, ReasonInvalidSpec, err.Error())
		app.Status.ObservedGeneration = app.Generation
		return ctrl.Result{}, nil
	}
	interval := r.interval(app)
	return r.reconcile(ctx, app, interval)
}

func (r *ApplicationReconciler) reconcile(ctx context.Context, app *kv1.Application, interval time.Duration) (ctrl.Result, error) {
	logger := log.FromContext(ctx)
	key := types.NamespacedName{Namespace: app.Namespace, Name: app.Name}
	r.metrics.apps.useRepo(key, app.Spec.Source.RepoURL)

	source, err := r.open(ctx, app)
	if err != nil {
		return r.failStep(app, stepFailure{reason: sourceReason(app), err: err, permanent: true}, interval)
	}
	health, err := r.health.get(app)
	if err != nil {
		app.Status.ObservedGeneration = app.Generation
		return r.failStep(app, stepFailure{reason: ReasonInvalidSpec, err: err, permanent: true}, interval)
	}
	src := app.Spec.Source
	if syncRequested(app) {
		r.invalidate(app) // an explicit request always asks the server
	}
	// In steady state (this spec applied, no request) a pass may reuse an
	// ls-remote of the same repository and credential made within its
	// interval: one per interval, whatever the number of Applications.
	var maxAge time.Duration
	if app.Status.ObservedGeneration == app.Generation && app.Status.LastAppliedRevision != "" && !syncRequested(app) {
		maxAge = interval
	}
	resolved, err := source.resolve(ctx, maxAge)
	if err != nil {
		return r.failStep(app, stepFailure{reason: source.reason(), err: err}, interval)
	}

	// Watch what the Application already deployed: after a restart nothing
	// is watched until this (idempotent once its kinds are).
	r.drift.watchRefs(ctx, inventoryRefs(app))
	driftSeen := r.drift.mark(key)
	trigger := r.syncTrigger(ctx, app, resolved, driftSeen, interval)
	if trigger == "" {
		// Nothing moved: refresh health while objects roll out, else sleep.
		return r.refreshHealth(ctx, app, interval)
	}
	override, stop, err := r.preSyncGates(ctx, app, trigger, interval)
	if stop != nil || err != nil {
		return ptr.Deref(stop, ctrl.Result{}), err
	}
	plan := r.planFor(app, resolved, trigger)
	sha := plan.Revision
	commit, err := source.fetch(ctx, sha)
	if err != nil {
		return r.failStep(app, fetchFailure(source, err), interval)
	}
	r.prioritizeChanged(ctx, source, trigger, src.RepoURL, sha)
	if sha == resolved {
		app.Status.LastAttemptedRevision = sha
	}
	record := kv1.SyncRecord{
		Revision: sha, Author: commit.Author, Committer: commit.Committer, Message: commit.Message,
		Trigger: trigger, StartedAt: metav1.Now(), WindowOverride: override,
	}
	if f := r.verifyRevision(ctx, app, commit, &record); f != nil {
		return r.failStep(app, *f, interval)
	}

	caps, err := r.capabilities.get(ctx)
	if err != nil {
		// Rendering without the cluster's API versions could drop the
		// objects a chart emits only when an API exists, and prune them.
		return r.failStep(app, stepFailure{reason: ReasonRenderFailed, err: err, record: &record}, interval)
	}
	objs, rendered, err := r.render(ctx, app, source, sha, caps)
	if err != nil {
		return r.failStep(app, stepFailure{reason: renderFailureReason(err), err: fmt.Errorf("rendering %s at %s: %w", displayPath(src.Path), kv1.ShortSHA(sha), err),
			permanent: true, record: &record}, interval)
	}
	if statusOnly(app, trigger, plan, rendered) {
		return r.recordUnchanged(ctx, app, sha, rendered, interval)
	}
	objs, approved, waiting, err := r.approvalGate(ctx, app, objs, &record)
	if err != nil {
		return r.failStep(app, approvalFailure(err, &record), interval)
	}
	if waiting {
		// The last approved state runs; `keyless approve` requests a sync.
		return ctrl.Result{RequeueAfter: interval}, nil
	}
	record.RenderedDigest = renderedDigest(objs)
	eng, err := r.engineFor(app)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !plan.Apply {
		return r.reportDiff(ctx, app, eng, objs, plan, &record, driftSeen, interval)
	}

	if trigger != TriggerDrift {
		r.commits.observe(app, forge.Status{SHA: sha, State: forge.StatePending, Context: app.StatusContext(),
			TargetURL: app.Spec.CommitStatus.TargetURLOrEmpty(), Description: "syncing"})
	}
	syncStart := time.Now()
	r.drift.unsettle(key) // whatever the outcome, the objects may have moved
	// Before the apply: kube-controller-manager annotates a Deployment
	// within milliseconds of keyless's write.
	r.drift.expect(key, objs)
	applyOpts := plan.applyOptions(app, r.hookTimeout, r.operationReporter(ctx, app))
	applyOpts.MaxSteps = r.maxWaves
	applyOpts.Health = health
	syncCtx, cancelSync := withSyncDeadline(ctx, r.syncTimeout)
	// A new revision while the sync waits ends the wait (supersede.go).
	applyCtx, supersede := context.WithCancelCause(syncCtx)
	poked, syncDone := r.syncs.start(key)
	go watchForNewRevision(applyCtx, source, resolved, interval, poked, supersede)
	applied := r.applies.applying()
	res, err := eng.Apply(applyCtx, objs, applyOpts)
	applied()
	newer := superseded(applyCtx)
	supersede(nil)
	syncDone()
	err = syncDeadlineError(syncCtx, r.syncTimeout, err)
	cancelSync()
	r.metrics.observeSync(syncStart, err)
	r.metrics.apps.observeSync(app, syncStart, err)
	r.endOperation(ctx, app)
	for _, w := range resultWarnings(res) {
		r.recorder.Eventf(app, nil, corev1.EventTypeWarning, "SyncWarning", "Sync", "%s", w)
	}
	if err != nil && newer != nil {
		return r.abandonSync(ctx, app, record, res, newer, err)
	}
	if err != nil {
		logger.Info("sync failed, last good state left running", "revision", sha, "error", err.Error())
		return r.failStep(app, syncFailure(err, &record, res), interval)
	}
	r.retries.reset(key)
	record.DryRun = kv1.DryRunPassed // every object was dry-run before it was written
	if app.PausedAt(time.Now()) == nil {
		app.Status.Pause = nil // a pause's drift is reverted with this sync
	}
	r.drift.clear(key, driftSeen)
	r.drift.watch(ctx, res)
	app.Status.LastAppliedRevision = sha
	setRenderStatus(app, rendered)
	app.Status.ObservedGeneration = app.Generation
	app.Status.Sync = kv1.SyncStatus{Status: kv1.SyncStatusSynced, Revision: sha}
	switch {
	case trigger == TriggerDrift && res.Changed():
		r.recordSync(app, record, res, syncEvent{Type: corev1.EventTypeNormal, Reason: ReasonDriftReverted,
			Message: fmt.Sprintf("reverted drift to %s: %s", kv1.ShortSHA(sha), changeSummary(res))})
	case trigger != TriggerDrift:
		r.recordSync(app, record, res, syncEvent{Type: corev1.EventTypeNormal, Reason: ReasonSynced,
			Message: fmt.Sprintf("synced %s (%s) by %s: %s%s", kv1.ShortSHA(sha), commit.Message, commit.Author, changeSummary(res), approvalNote(approved)+approversNote(record))})
	}
	return r.refreshHealth(ctx, app, interval)
}

// reportDiff is a sync that only compares (no automated policy, or drift
// with selfHeal off): Synced, or OutOfSync with what differs.
func (r *ApplicationReconciler) reportDiff(ctx context.Context, app *kv1.Application, eng *engine.Engine, objs []*unstructured.Unstructured, plan syncPlan, record *kv1.SyncRecord, driftSeen uint64, interval time.Duration) (ctrl.Result, error) {
	key := types.NamespacedName{Namespace: app.Namespace, Name: app.Name}
	sha := plan.Revision
	diff, err := eng.Diff(ctx, objs, plan.diffOptions(app))
	if err != nil {
		return r.failStep(app, syncFailure(err, record, nil), interval)
	}
	app.Status.Sync = kv1.SyncStatus{Status: kv1.SyncStatusSynced, Revision: sha}
	if diff.Changed() {
		app.Status.Sync = kv1.SyncStatus{Status: kv1.SyncStatusOutOfSync, Revision: sha, Drifted: driftedObjects(diff), Diff: driftDiff(diff, app)}
	}
	app.Status.ObservedGeneration = app.Generation
	r.drift.clear(key, driftSeen)
	if diff.Changed() {
		msg := "out of sync: " + strings.Join(app.Status.Sync.Drifted, ", ")
		r.recordPausedDrift(ctx, app, eng, diff)
		switch {
		case app.Status.Pause != nil:
			msg += pauseNote(app)
		case app.Automated():
			msg += " (selfHeal is off)"
		default:
			msg += " (no automated sync policy: run `keyless sync " + app.Name + " -n " + app.Namespace + "`)"
		}
		setReady(app, false, ReasonOutOfSync, msg)
		r.recorder.Eventf(app, nil, corev1.EventTypeWarning, ReasonOutOfSync, "Diff", "%s", msg)
		if p := app.Status.Pause; p != nil {
			// Back at the pause's end, to revert its drift.
			return ctrl.Result{RequeueAfter: min(interval, max(time.Until(p.Until.Time)+time.Second, time.Second))}, nil
		}
		return ctrl.Result{RequeueAfter: interval}, nil
	}
	return r.refreshHealth(ctx, app, interval)
}

// planFor is planSync's plan for this pass, with what the reconciler
// knows besides the Application: a break-glass pause reports drift
// instead of reverting it (until its end), and a new revision, spec or
// request counts retries afresh.
func (r *ApplicationReconciler) planFor(app *kv1.Application, resolved, trigger string) syncPlan {
	plan := planSync(app, resolved, trigger)
	if pause, _ := r.trackPause(app, time.Now()); pause != nil && trigger == TriggerDrift {
		plan.Apply = false
	}
	if trigger != TriggerRetry && trigger != TriggerDrift {
		r.retries.reset(types.NamespacedName{Namespace: app.Namespace, Name: app.Name})
	}
	return plan
}

// fetchFailure is a failed fetch: a signature refused by its rule
// (verificationError) fails with VerificationFailed until the revision or
// the rule changes, anything else with the source's reason.
func fetchFailure(source openSource, err error) stepFailure {
	if ve := (*verificationError)(nil); errors.As(err, &ve) {
		return stepFailure{reason: ReasonVerificationFailed, err: err, permanent: true}
	}
	return stepFailure{reason: source.reason(), err: err}
}

// verifyRevision applies the source's rules to the fetched revision: its
// signature (spec.source.verify mode head), then its approvals at the forge
// (spec.source.verify.approvals). nil: it may be rendered and applied.
func (r *ApplicationReconciler) verifyRevision(ctx context.Context, app *kv1.Application, commit *provenance, record *kv1.SyncRecord) *stepFailure {
	if err := r.verifyCommit(ctx, app, commit, record); err != nil {
		return &stepFailure{reason: ReasonVerificationFailed, err: err, permanent: true, record: record}
	}
	if err := r.checkForgeApprovals(ctx, app, commit, record); err != nil {
		f := forgeApprovalFailure(err, record)
		return &f
	}
	return nil
}

// verifyCommit checks the commit's signature when spec.source.verify asks
// for it, recording the signer.
func (r *ApplicationReconciler) verifyCommit(ctx context.Context, app *kv1.Application, commit *provenance, record *kv1.SyncRecord) error {
	if commit.signer != "" {
		record.Signer = commit.signer // verified by the source itself
	}
	if app.Spec.Source.Verify == nil || app.Spec.Source.Verify.Mode == "" || commit.commit == nil {
		return nil // no signature rule (approvals alone)
	}
	signer, err := r.verify(ctx, app, commit.commit)
	if err != nil {
		return fmt.Errorf("commit %s refused: %w", kv1.ShortSHA(record.Revision), err)
	}
	record.Signer = signer
	return nil
}

// syncTrigger says why this pass syncs app at sha ("": it does not):
// triggerOf's decision, else a due blind drift check, else the cluster's
// capabilities changed since the app's chart was rendered (a CRD installed:
// the chart may render differently at the same commit, like drift).
func (r *ApplicationReconciler) syncTrigger(ctx context.Context, app *kv1.Application, sha string, driftSeen uint64, interval time.Duration) string {
	key := types.NamespacedName{Namespace: app.Namespace, Name: app.Name}
	if trigger := triggerOf(app, sha, driftSeen); trigger != "" {
		return trigger
	}
	if _, ended := r.trackPause(app, time.Now()); ended {
		return TriggerDrift // a break-glass pause ended: revert its drift to Git
	}
	if r.drift.blindDue(ctx, key, inventoryRefs(app), interval) || r.capabilities.changedFor(ctx, key) {
		return TriggerDrift
	}
	return ""
}

// refreshHealth reads the deployed objects' kstatus and sets health and Ready.
func (r *ApplicationReconciler) refreshHealth(ctx context.Context, app *kv1.Application, interval time.Duration) (ctrl.Result, error) {
	if app.Status.LastAppliedRevision == "" || app.Status.Sync.Status == kv1.SyncStatusOutOfSync {
		return ctrl.Result{RequeueAfter: interval}, nil
	}
	key := types.NamespacedName{Namespace: app.Namespace, Name: app.Name}
	refs := inventoryRefs(app)
	previous := app.Status.Health.Status
	seen, settled := r.drift.healthSettled(key)
	watched := false
	if !settled || previous != kv1.HealthHealthy {
		// Read the objects: their health may have moved. A Healthy
		// Application none of whose (watched) objects changed since its
		// last check is still Healthy: a periodic pass reads nothing.
		watched = r.drift.allSynced(ctx, refs)
		eng, err := r.engineFor(app)
		if err != nil {
			return ctrl.Result{}, err
		}
		checker, _ := r.health.get(app) // a spec whose expressions fail is Stalled before this
		statuses, err := eng.Status(ctx, refs, checker)
		if err != nil {
			return ctrl.Result{}, err
		}
		app.Status.Health = health(statuses)
		r.drift.healthChecked(key, seen, watched)
	}
	if app.Status.Health.Status == kv1.HealthDegraded && previous != kv1.HealthDegraded {
		r.notifier.notify(app, kv1.EventHealthDegraded, AuditRecord{
			Time: time.Now(), App: app.Name, Namespace: app.Namespace, Revision: app.Status.LastAppliedRevision,
			Trigger: "health", ServiceAccount: serviceAccountOf(app), Result: kv1.HealthDegraded, Error: app.Status.Health.Message, Changes: []AuditChange{},
		}, "health degraded: "+app.Status.Health.Message)
	}
	r.drift.setProgressing(key, app.Status.Health.Status == kv1.HealthProgressing)
	if meta.IsStatusConditionTrue(app.Status.Conditions, kv1.StalledCondition) && app.Status.LastAttemptedRevision != app.Status.LastAppliedRevision {
		// A newer revision failed for good (a failed hook, a refused object…):
		// the last good state runs, and the conditions keep saying why until
		// a new commit or spec; clearing them here would retry the failure.
		return ctrl.Result{RequeueAfter: interval}, nil
	}
	switch app.Status.Health.Status {
	case kv1.HealthHealthy:
		setReady(app, true, ReasonSucceeded, fmt.Sprintf("applied revision %s; %s", kv1.ShortSHA(app.Status.LastAppliedRevision), app.Status.Health.Message))
	case kv1.HealthProgressing:
		setProgressing(app, app.Status.Health.Message)
		// Never later than the interval: it also looks for new commits.
		return ctrl.Result{RequeueAfter: min(r.drift.progressingRequeue(key, watched), interval)}, nil
	default:
		setReady(app, false, app.Status.Health.Status, app.Status.Health.Message)
	}
	return ctrl.Result{RequeueAfter: interval}, nil
}

// stepFailure is a reconcile step that failed, and how to report it.
type stepFailure struct {
	reason string
	err    error
	// permanent: only a new commit or spec fixes it — Stalled, and the next
	// attempt waits for the interval. Otherwise Ready=False and the
	// controller retries with backoff.
	permanent bool
	// record is the sync the step belonged to (nil before a sync started):
	// a failed sync goes to history, the audit line and an Event.
	record *kv1.SyncRecord
	res    *engine.Result
}

// syncFailure is the failure of the engine's diff or apply: its reason and
// permanence come from the error's type.
func syncFailure(err error, record *kv1.SyncRecord, res *engine.Result) stepFailure {
	if record != nil && engine.IsDryRunFailure(err) {
		record.DryRun = kv1.DryRunFailed
	}
	return stepFailure{reason: failureReason(err), err: err, permanent: engine.IsPermanent(err), record: record, res: res}
}

// failStep is the one mapping from a failed step to the Application's
// conditions, its records and the controller's result. The last good state
// stays running whatever failed.
func (r *ApplicationReconciler) failStep(app *kv1.Application, f stepFailure, interval time.Duration) (ctrl.Result, error) {
	msg := f.err.Error()
	var retryAfter time.Duration
	if limit, backoff, ok := app.RetryPolicy(); ok && f.record != nil && !f.permanent {
		// spec.syncPolicy.retry: its backoff, and Stalled past its limit.
		n := r.retries.failed(types.NamespacedName{Namespace: app.Namespace, Name: app.Name}, f.record.Revision)
		if limit >= 0 && int64(n) > limit {
			f.permanent = true
			msg = fmt.Sprintf("gave up after %d retries (spec.syncPolicy.retry.limit %d; a new revision, spec or keyless sync tries again): %s", n-1, limit, msg)
		} else {
			retryAfter = backoff(n)
			msg = fmt.Sprintf("%s (retry %d of %s in %s)", msg, n, retryLimitText(limit), retryAfter)
		}
	}
	if f.record == nil && !sameReadyCondition(app, f.reason, msg) {
		// A failure before a sync started (Git, chart, a refused
		// credential…) has no history entry: an Event says it, once
		// per new reason or message, not on every retry.
		r.recorder.Eventf(app, nil, corev1.EventTypeWarning, f.reason, "Reconcile", "%s", msg)
	}
	if f.permanent {
		setStalled(app, f.reason, msg)
	} else {
		setReady(app, false, f.reason, msg)
	}
	if f.record != nil {
		app.Status.ObservedGeneration = app.Generation
		rec := *f.record
		rec.Result = kv1.SyncResultFailed
		rec.Error = msg
		if len(app.Status.History) == 0 || app.Status.History[0].Revision != rec.Revision || app.Status.History[0].Error != msg {
			r.recordSync(app, rec, f.res, syncEvent{Type: corev1.EventTypeWarning, Reason: f.reason, Message: msg})
		}
	}
	switch {
	case f.permanent:
		return ctrl.Result{RequeueAfter: interval}, nil
	case retryAfter > 0:
		return ctrl.Result{RequeueAfter: retryAfter}, nil
	}
	return ctrl.Result{}, f.err
}

func retryLimitText(limit int64) string {
	if limit < 0 {
		return "unlimited"
	}
	return strconv.FormatInt(limit, 10)
}

// sameReadyCondition reports whether app's Ready condition already says
// reason and msg (False).
func sameReadyCondition(app *kv1.Application, reason, msg string) bool {
	c := meta.FindStatusCondition(app.Status.Conditions, kv1.ReadyCondition)
	return c != nil && c.Status == metav1.ConditionFalse && c.Reason == reason && c.Message == msg
}

func failureReason(err error) string {
	var (
		hook      *engine.HookError
		immutable *engine.ImmutableError
	)
	switch {
	case errors.Is(err, engine.ErrRefused), errors.Is(err, engine.ErrEmpty):
		return ReasonRefused
	case errors.As(err, &hook):
		return ReasonHookFailed
	case errors.As(err, &immutable):
		return ReasonImmutable
	}
	return ReasonApplyFailed
}

// syncRequested reports an unhandled `keyless sync` request.
func syncRequested(app *kv1.Application) bool {
	return pendingSyncRequest(app) != ""
}

// pendingSyncRequest returns the token of an unhandled `keyless sync`
// request ("": none).
func pendingSyncRequest(app *kv1.Application) string {
	if v := app.Annotations[kv1.SyncRequestedAnnotation]; v != app.Status.LastHandledSyncRequest {
		return v
	}
	return ""
}

// acknowledge records request (a token pendingSyncRequest returned) as
// handled: the status written with it says how the pass that saw it ended.
func acknowledge(app *kv1.Application, request string) {
	if request != "" {
		app.Status.LastHandledSyncRequest = request
	}
}

func (r *ApplicationReconciler) interval(app *kv1.Application) time.Duration {
	return app.IntervalOr(r.defaultInterval)
}

// validateSpec enforces the pull model: an Application deploys into its own
// namespace of this cluster.
func validateSpec(app *kv1.Application) error {
	if p := app.Spec.SyncPolicy; p != nil {
		for i, o := range p.SyncOptions {
			if !slices.Contains(kv1.HonouredSyncOptions, o) {
				return fmt.Errorf("spec.syncPolicy.syncOptions[%d] %q is not supported (keyless honours %s)", i, o, strings.Join(kv1.HonouredSyncOptions, ", "))
			}
		}
	}
	if d := app.Spec.Destination; d != nil {
		if d.Namespace != "" && d.Namespace != app.Namespace {
			return fmt.Errorf("spec.destination.namespace %q must equal the Application's namespace %q: an Application deploys into its own namespace only (create the Application in %q instead)", d.Namespace, app.Namespace, d.Namespace)
		}
		if d.Server != "" && strings.TrimSuffix(d.Server, "/") != kv1.InClusterServer {
			return fmt.Errorf("spec.destination.server %q is not this cluster: keyless is pull-based, each cluster runs its own controller (use %s or leave it empty)", d.Server, kv1.InClusterServer)
		}
	}
	return validateSource(app)
}

// render renders the app at sha. Each Application's last render is kept
// (by repository, namespace and options, with what it read), so memory is
// bounded by the number of Applications, a periodic pass renders nothing,
// and neither does a commit that changes none of the render's inputs
// (renderinputs.go). The outcome says which it was, for status.render.
func (r *ApplicationReconciler) render(ctx context.Context, app *kv1.Application, source openSource, sha string, caps Capabilities) (_ []*unstructured.Unstructured, _ renderOutcome, retErr error) {
	src := app.Spec.Source
	opts, err := RenderOptions(app)
	if err != nil {
		return nil, renderOutcome{}, err
	}
	caps.ApplyTo(&opts)
	cacheKey := fmt.Sprintf("%s|%s|%+v", src.RepoURL, app.Namespace, opts)
	appKey := types.NamespacedName{Namespace: app.Namespace, Name: app.Name}
	if objs, ok := r.renders.get(appKey, cacheKey, sha); ok {
		return objs, renderOutcome{cached: true}, nil
	}
	objs, out := r.reuseRender(ctx, appKey, cacheKey, source, sha)
	if objs != nil {
		return objs, out, nil
	}
	start := time.Now()
	defer func() { r.metrics.observeRender(start, retErr) }()
	co, err := source.checkout(ctx, sha)
	if err != nil {
		return nil, out, err
	}
	defer co.Release()
	opts.Root, opts.Path, opts.RefRoots = co.Root, co.Path, co.RefRoots
	if opts.Decryption, err = r.decryptionKeys(ctx, app); err != nil {
		return nil, out, err
	}
	creds, err := r.repositoryCredentials(ctx, app)
	if err != nil {
		return nil, out, err
	}
	if opts.Helm.Dependencies, err = r.chartDependencies(ctx, app, co.Root, opts.Path, creds); err != nil {
		return nil, out, err
	}
	if opts.Helm.PulledCharts, err = r.kustomizeCharts(ctx, co.Root, opts.Path, opts.Limits, creds); err != nil {
		return nil, out, err
	}
	res, err := r.renderer.Render(ctx, opts)
	if err != nil {
		return nil, out, err
	}
	r.capabilities.rendered(appKey, caps, res.Kind == render.KindHelm)
	out.rendered, out.renderedAt = true, sha
	if len(res.Decrypted) == 0 {
		// A render that decrypted is not kept: plaintext lives only as
		// long as the sync that applies it.
		inputs, values := r.inputValues(ctx, source, sha, res.Inputs)
		out.inputs = len(inputs)
		r.renders.put(appKey, cacheKey, src.RepoURL, sha, res.Objects, inputs, values)
	}
	return res.Objects, out, nil
}

// RenderOptions are the options app's path is rendered with (Root left
// for the caller: the checkout of the revision): the controller and
// `keyless preview` render an Application through this one function.
func RenderOptions(app *kv1.Application) (render.Options, error) {
	src := app.Spec.Source
	opts := render.Options{Path: src.Path, Namespace: app.Namespace, Helm: render.HelmOptions{ReleaseName: app.Name}}
	if h := src.Helm; h != nil {
		opts.Helm.ValueFiles = h.ValueFiles
		if h.ReleaseName != "" {
			opts.Helm.ReleaseName = h.ReleaseName
		}
		inline, err := helmInlineValues(h)
		if err != nil {
			return render.Options{}, err
		}
		vals, err := HelmValues(h.Parameters)
		if err != nil {
			return render.Options{}, err
		}
		// Argo CD's order: valueFiles, then the inline values, then parameters.
		opts.Helm.Values = render.MergeValues(inline, vals)
		opts.Helm.KubeVersion = h.KubeVersion
		opts.Helm.APIVersions = h.APIVersions
	}
	if d := src.Directory; d != nil {
		opts.Directory = render.DirectoryOptions{Recurse: d.Recurse, Include: d.Include, Exclude: d.Exclude}
		if j := d.Jsonnet; j != nil {
			opts.Directory.Jsonnet = render.JsonnetOptions{ExtVars: jsonnetVars(j.ExtVars), TLAs: jsonnetVars(j.TLAs), Libs: j.Libs}
		}
	}
	return opts, nil
}

// jsonnetVars converts spec.source.directory.jsonnet variables.
func jsonnetVars(vars []kv1.JsonnetVar) []render.JsonnetVar {
	out := make([]render.JsonnetVar, 0, len(vars))
	for _, v := range vars {
		out = append(out, render.JsonnetVar(v))
	}
	return out
}

// helmInlineValues are spec.source.helm.valuesObject, else values (Argo
// CD's precedence), parsed as a values file.
func helmInlineValues(h *kv1.HelmSource) (map[string]any, error) {
	switch {
	case h.ValuesObject != nil && len(h.ValuesObject.Raw) > 0:
		return render.InlineValues("spec.source.helm.valuesObject", h.ValuesObject.Raw)
	case strings.TrimSpace(h.Values) != "":
		return render.InlineValues("spec.source.helm.values", []byte(h.Values))
	}
	return map[string]any{}, nil
}

// HelmValues turns spec.source.helm.parameters into values with Helm's
// --set semantics, the same function `keyless render --helm-set` uses.
func HelmValues(params []kv1.HelmParameter) (map[string]any, error) {
	out := map[string]any{}
	for i, p := range params {
		if err := render.SetHelmValue(out, p.Name, p.Value); err != nil {
			return nil, fmt.Errorf("spec.source.helm.parameters[%d]: %w", i, err)
		}
	}
	return out, nil
}

// engineFor returns the engine that impersonates the app's deployer.
func (r *ApplicationReconciler) engineFor(app *kv1.Application) (*engine.Engine, error) {
	return r.engines.get(types.NamespacedName{Namespace: app.Namespace, Name: app.Name},
		"system:serviceaccount:"+app.Namespace+":"+serviceAccountOf(app))
}

// owns reports whether app belongs to this controller's shard (read
// uncached, the cache's label selector has not filtered it).
func (r *ApplicationReconciler) owns(app *kv1.Application) bool {
	return app.Labels[kv1.ShardLabel] == r.shard
}

// cleansUp reports whether app is being deleted with this controller's
// finalizer on it: whatever its shard label now says, the objects it
// deployed are this controller's to remove.
func (r *ApplicationReconciler) cleansUp(app *kv1.Application) bool {
	return !app.DeletionTimestamp.IsZero() && controllerutil.ContainsFinalizer(app, Finalizer)
}

// forget drops what the reconciler holds for an Application that is gone.
func (r *ApplicationReconciler) forget(key types.NamespacedName) {
	r.stale.forget(key)
	r.drift.forget(key)
	r.renders.forget(key)
	r.health.forget(key)
	r.retries.reset(key)
	r.capabilities.forget(key)
	r.engines.forget(key)
	r.commits.forget(key)
	r.metrics.apps.forget(key)
}

// finalize deletes what the app deployed (unless annotated to orphan), then
// releases the finalizer.
func (r *ApplicationReconciler) finalize(ctx context.Context, app *kv1.Application) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(app, Finalizer) {
		return ctrl.Result{}, nil
	}
	// The cache may still show the finalizer an earlier reconcile already
	// released (an event queued during that deletion runs before the cache
	// sees the Application go): read it fresh, or its delete hooks would run
	// a second time, deleting the first run's objects.
	fresh := &kv1.Application{}
	if err := r.apiReader.Get(ctx, client.ObjectKeyFromObject(app), fresh); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(client.ObjectKeyFromObject(app))
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("reading the Application being deleted: %w", err)
	}
	if !controllerutil.ContainsFinalizer(fresh, Finalizer) {
		return ctrl.Result{}, nil
	}
	if !r.owns(fresh) && r.shardRefusal(fresh) == "" {
		// Moved to another shard meanwhile: that controller finalizes it.
		r.forget(client.ObjectKeyFromObject(app))
		return ctrl.Result{}, nil
	}
	app = fresh
	if app.ApprovesOutOfNamespace() && r.approvalNamespace != "" {
		if err := r.dropPending(ctx, app); err != nil {
			return ctrl.Result{}, err
		}
	}
	if app.Annotations[kv1.DeletionPolicyAnnotation] != kv1.DeletionPolicyOrphan && len(app.Status.Inventory) > 0 {
		eng, err := r.engineFor(app)
		if err != nil {
			return ctrl.Result{}, err
		}
		res, err := eng.Apply(ctx, r.deleteHooks(ctx, app), engine.ApplyOptions{Namespace: app.Namespace, Name: app.Name, Inventory: statusInventory{app: app}, Prune: true, AllowEmpty: true, StepTimeout: r.hookTimeout})
		if err != nil {
			r.recorder.Eventf(app, nil, corev1.EventTypeWarning, "DeleteFailed", "Delete", "deleting deployed objects: %v", err)
			return ctrl.Result{}, err
		}
		r.recordSync(app, kv1.SyncRecord{Revision: app.Status.LastAppliedRevision, Trigger: TriggerDelete, StartedAt: metav1.Now()}, res, syncEvent{})
	}
	patch := client.MergeFrom(app.DeepCopy())
	controllerutil.RemoveFinalizer(app, Finalizer)
	if err := r.client.Patch(ctx, app, patch); err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	r.forget(types.NamespacedName{Namespace: app.Namespace, Name: app.Name})
	return ctrl.Result{}, nil
}

// deleteHooks returns the PreDelete and PostDelete hooks of the last
// applied revision (Helm's pre-delete/post-delete), which run around
// deleting what the Application deployed. A render that fails now is
// reported and the deletion goes on without hooks.
func (r *ApplicationReconciler) deleteHooks(ctx context.Context, app *kv1.Application) []*unstructured.Unstructured {
	if app.Status.LastAppliedRevision == "" {
		return nil
	}
	caps, err := r.capabilities.get(ctx) // on error: the last good answer, else the defaults
	if err != nil {
		log.FromContext(ctx).Info("rendering delete hooks without the cluster's capabilities", "error", err.Error())
	}
	source, err := r.open(ctx, app)
	if err != nil {
		r.recorder.Eventf(app, nil, corev1.EventTypeWarning, "DeleteHooksSkipped", "Delete",
			"opening the source to find its delete hooks: %v; deleting without them", err)
		return nil
	}
	objs, _, err := r.render(ctx, app, source, app.Status.LastAppliedRevision, caps)
	if err != nil {
		r.recorder.Eventf(app, nil, corev1.EventTypeWarning, "DeleteHooksSkipped", "Delete",
			"rendering %s to find its delete hooks: %v; deleting without them", kv1.ShortSHA(app.Status.LastAppliedRevision), err)
		return nil
	}
	var hooks []*unstructured.Unstructured
	for _, o := range objs {
		l, err := lifecycle.Of(o, false)
		if err == nil && l.Hook && (l.Has(lifecycle.PhasePreDelete) || l.Has(lifecycle.PhasePostDelete)) {
			hooks = append(hooks, o)
		}
	}
	return hooks
}

// patchStatus writes the status only when it changed: a no-op reconcile makes no write.
func (r *ApplicationReconciler) patchStatus(ctx context.Context, before, app *kv1.Application) error {
	if equalStatus(before.Status, app.Status) {
		return nil
	}
	// The version this write replaces: before's, or a later one when the
	// sync wrote its progress (each progress write recorded its own).
	replaced := app.ResourceVersion
	if err := r.client.Status().Patch(ctx, app, client.MergeFrom(before)); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("writing status: %w", err)
	}
	r.stale.wrote(client.ObjectKeyFromObject(app), replaced)
	return nil
}

func equalStatus(a, b kv1.ApplicationStatus) bool {
	return equality.Semantic.DeepEqual(a, b)
}

func displayPath(p string) string {
	if p == "" {
		return "the repository root"
	}
	return p
}

package controller

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"

	"github.com/go-logr/logr"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/credential"
	"github.com/keyless-cd/keyless/internal/egress"
	"github.com/keyless-cd/keyless/internal/forge"
	"github.com/keyless-cd/keyless/internal/notify"
)

// Event reasons of deliveries that gave up.
const (
	ReasonCommitStatusFailed = "CommitStatusFailed"
	ReasonNotificationFailed = "NotificationFailed"
)

// commitFailureReasons are the Ready reasons that fail the attempted commit.
var commitFailureReasons = []string{
	ReasonRenderFailed, ReasonRefused, ReasonApplyFailed, ReasonHookFailed, ReasonImmutable, ReasonVerificationFailed,
	ReasonDecryptionFailed, kv1.ReasonApprovalMissing,
}

// commitStatusOf is the status the Application's attempted commit should
// carry at the forge, from its status alone: pending while a sync or a
// rollout runs (or the commit waits for a manual sync), success when
// Synced and Healthy, failure with the reason otherwise. ok is false when
// nothing is to be said (no commitStatus, suspended, or a Git outage that
// says nothing of the commit).
func commitStatusOf(app *kv1.Application) (st forge.Status, ok bool) {
	sha := app.Status.LastAttemptedRevision
	cs := app.Spec.CommitStatus
	ready := apimeta.FindStatusCondition(app.Status.Conditions, kv1.ReadyCondition)
	if cs == nil || sha == "" || app.Spec.Suspend || ready == nil {
		return st, false
	}
	st = forge.Status{SHA: sha, Context: app.StatusContext(), TargetURL: cs.TargetURL}
	applied := app.Status.LastAppliedRevision == sha
	switch {
	case app.Status.Operation != nil:
		st.State, st.Description = forge.StatePending, "syncing: "+app.Status.Operation.Phase
	case ready.Status == metav1.ConditionTrue && applied:
		st.State, st.Description = forge.StateSuccess, "synced and healthy"
	case ready.Reason == ReasonProgressing && applied:
		st.State, st.Description = forge.StatePending, "rolling out: "+ready.Message
	case ready.Reason == kv1.ReasonAwaitingApproval:
		st.State, st.Description = forge.StatePending, AwaitingApprovalMessage
	case ready.Reason == ReasonOutOfSync:
		st.State, st.Description = forge.StatePending, ready.Message
	case ready.Reason == kv1.HealthDegraded && applied:
		st.State, st.Description = forge.StateFailure, "degraded: "+ready.Message
	case slices.Contains(commitFailureReasons, ready.Reason):
		st.State, st.Description = forge.StateFailure, ready.Reason+": "+ready.Message
	default:
		return st, false
	}
	return st, true
}

// commitReport is what one Application wants said at the forge.
type commitReport struct {
	app    appRef
	cs     kv1.CommitStatus
	repo   string
	status forge.Status
}

// appRef is enough of an Application to read its Secrets and record Events.
type appRef struct {
	types.NamespacedName
	uid types.UID
}

func refOf(app *kv1.Application) appRef {
	return appRef{NamespacedName: types.NamespacedName{Namespace: app.Namespace, Name: app.Name}, uid: app.UID}
}

// object is the Application an Event about ref is recorded on.
func (ref appRef) object() *kv1.Application {
	return &kv1.Application{
		TypeMeta:   metav1.TypeMeta{APIVersion: kv1.GroupVersion.String(), Kind: "Application"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ref.Namespace, Name: ref.Name, UID: ref.uid},
	}
}

// commitReporter delivers commit statuses: the newest wanted status per
// Application, sent once, off the reconcile path; an Application's older
// status still queued is replaced by its newer one.
type commitReporter struct {
	secrets       client.Reader
	http          *http.Client
	allowInsecure bool
	recorder      recorder.EventRecorder
	metrics       *metrics
	queue         *deliveryQueue[types.NamespacedName]

	mu   sync.Mutex
	want map[types.NamespacedName]commitReport
	sent map[types.NamespacedName]forge.Status
}

// newCommitReporter delivers through an egress client of eg
// (eg.AllowLoopback: also plain http://, for loopback tests).
func newCommitReporter(secrets client.Reader, rec recorder.EventRecorder, m *metrics, logger logr.Logger, eg egress.Options) *commitReporter {
	c := &commitReporter{
		secrets: secrets, recorder: rec, metrics: m, allowInsecure: eg.AllowLoopback,
		http: egress.NewClient(eg),
		want: map[types.NamespacedName]commitReport{}, sent: map[types.NamespacedName]forge.Status{},
	}
	c.queue = newDeliveryQueue("commit-status", logger, c.deliver, permanentDelivery, c.giveUp,
		func(k types.NamespacedName) string { return k.Namespace })
	return c
}

// observe queues app's commit status when it differs from the last one wanted.
func (c *commitReporter) observe(app *kv1.Application, st forge.Status) {
	if c == nil || app.Spec.CommitStatus == nil {
		return
	}
	key := types.NamespacedName{Namespace: app.Namespace, Name: app.Name}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.want[key]; ok && prev.status == st && prev.cs == *app.Spec.CommitStatus {
		return
	}
	c.want[key] = commitReport{app: refOf(app), cs: *app.Spec.CommitStatus, repo: app.Spec.Source.RepoURL, status: st}
	if !c.queue.add(key) {
		c.metrics.deliveries.WithLabelValues(deliveryCommitStatus, "dropped").Inc()
	}
}

// report queues the status app's own status calls for.
func (c *commitReporter) report(app *kv1.Application) {
	if st, ok := commitStatusOf(app); ok {
		c.observe(app, st)
	}
}

func (c *commitReporter) forget(key types.NamespacedName) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.want, key)
	delete(c.sent, key)
}

// deliver sends the newest status wanted for key, unless it was sent.
func (c *commitReporter) deliver(ctx context.Context, key types.NamespacedName) error {
	c.mu.Lock()
	rep, ok := c.want[key]
	done := ok && c.sent[key] == rep.status
	c.mu.Unlock()
	if !ok || done {
		return nil
	}
	vals, err := readSecretKeys(ctx, c.secrets, secretUse{namespace: key.Namespace, name: rep.cs.SecretRef.Name,
		use: credential.Forge, field: "spec.commitStatus.secretRef", target: rep.repo, allowInsecure: c.allowInsecure}, kv1.CommitStatusTokenKey)
	if err != nil {
		return err
	}
	token := vals[0]
	cl, err := forge.New(forge.Options{Provider: rep.cs.Provider, RepoURL: rep.repo, APIURL: rep.cs.APIURL, Token: string(token),
		AllowInsecureHTTP: c.allowInsecure, HTTP: c.http})
	if err != nil {
		return err
	}
	if err := cl.Set(ctx, rep.status); err != nil {
		c.metrics.deliveries.WithLabelValues(deliveryCommitStatus, "retry").Inc()
		return err
	}
	c.metrics.deliveries.WithLabelValues(deliveryCommitStatus, "success").Inc()
	c.mu.Lock()
	c.sent[key] = rep.status
	c.mu.Unlock()
	return nil
}

func (c *commitReporter) giveUp(key types.NamespacedName, err error) {
	c.metrics.deliveries.WithLabelValues(deliveryCommitStatus, "failed").Inc()
	c.mu.Lock()
	rep, ok := c.want[key]
	c.mu.Unlock()
	if !ok {
		return
	}
	c.recorder.Eventf(rep.app.object(), nil, corev1.EventTypeWarning, ReasonCommitStatusFailed, "CommitStatus",
		"could not set the %s status on %s: %v", rep.status.State, kv1.ShortSHA(rep.status.SHA), err)
}

// errSecretKey is a Secret without the key a delivery needs.
var errSecretKey = errors.New("secret key missing")

// secretUse is a Secret a delivery reads and what it is for.
type secretUse struct {
	namespace, name string
	use             credential.Use
	// field is the spec field that names the Secret.
	field string
	// target is the URL the Secret's token goes to (forge tokens).
	target        string
	allowInsecure bool
}

// readSecretKeys reads keys of the Secret of u with one uncached GET,
// after credential.Check: labelled for its use, bound to the host it goes
// to, never a ServiceAccount token.
func readSecretKeys(ctx context.Context, r client.Reader, u secretUse, keys ...string) ([][]byte, error) {
	s, err := credential.Get(ctx, r, u.namespace, u.name, u.use, u.field, u.target, u.allowInsecure)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(keys))
	for i, key := range keys {
		if out[i] = s.Data[key]; len(out[i]) == 0 {
			return nil, fmt.Errorf("%w: Secret %s/%s (%s) has no key %q", errSecretKey, u.namespace, u.name, u.field, key)
		}
	}
	return out, nil
}

// permanentDelivery: configuration errors, refused addresses and 4xx other
// than 408/429 are not retried.
func permanentDelivery(err error) bool {
	return notify.Permanent(err) || errors.Is(err, forge.ErrConfig) || errors.Is(err, errSecretKey) || errors.Is(err, credential.ErrRefused)
}

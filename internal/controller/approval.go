package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/approval"
	"github.com/keyless-cd/keyless/internal/engine"
)

// ErrNoApprovalNamespace is returned (wrapped) when an Application asks for approvals
// (spec.syncPolicy.outOfNamespace: approve) but the controller has no
// namespace of its own to read approval records from, or that namespace
// is one whose admin could forge them.
var ErrNoApprovalNamespace = errors.New("no namespace for approval records")

// AwaitingApprovalMessage is what the commit status, the condition and
// notifications say while a revision waits.
const AwaitingApprovalMessage = "awaiting approval by a cluster admin"

// approvalGate decides what of objs may be applied for an Application
// whose out-of-namespace objects wait for a person's approval
// (spec.syncPolicy.outOfNamespace: approve): the objects of its own
// namespace, when the out-of-namespace ones are the approved ones (their
// digest is the approval record's), with that record (named in record);
// else nothing — it
// stores the pending bundle for `keyless approve`, says AwaitingApproval
// and returns waiting. An Application that does not ask for approvals
// gets objs back whole: the engine refuses what is outside, as ever.
//
// The controller never reads or writes the out-of-namespace objects
// themselves (it has no right to): it trusts the recorded digest, which
// only whoever may write in the controller's namespace can record.
func (r *ApplicationReconciler) approvalGate(ctx context.Context, app *kv1.Application, objs []*unstructured.Unstructured, record *kv1.SyncRecord) (inside []*unstructured.Unstructured, approved *approval.Record, waiting bool, err error) {
	rec := *record
	if !app.ApprovesOutOfNamespace() {
		app.Status.Approval = nil
		return objs, nil, false, nil
	}
	if err := r.checkApprovalNamespace(); err != nil {
		return nil, nil, false, err
	}
	inside, outside, err := engine.Partition(objs, app.Namespace, r.engines.mapper)
	if err != nil {
		return nil, nil, false, err
	}
	bundle := approval.NewBundle(outside)
	digest, err := bundle.Digest()
	if err != nil {
		return nil, nil, false, err
	}
	approved, err = r.approvalRecord(ctx, app)
	if err != nil {
		return nil, nil, false, err
	}
	st := &kv1.ApprovalStatus{}
	if approved != nil {
		st.Approved = &kv1.ApprovedBundle{Digest: approved.Digest, Revision: approved.Revision, Approver: approved.Approver,
			At: metav1.NewTime(approved.At), SelfApproved: approved.SelfApproved}
		if prev := app.Status.Approval; prev == nil || prev.Approved == nil || prev.Approved.Digest != approved.Digest || !prev.Approved.At.Time.Equal(approved.At) {
			r.recorder.Eventf(app, nil, corev1.EventTypeNormal, kv1.ReasonApproved, "Approve", "%s",
				approvedMessage(approved))
		}
	}
	if (len(outside) == 0 && approved == nil) || (approved != nil && approved.Digest == digest) {
		// Nothing outside was ever approved and nothing is now, or the
		// render's objects are the approved ones: the deployer's part
		// syncs. A newer revision may still wait while this one (a drift
		// revert of the last applied revision) syncs.
		if prev := app.Status.Approval; prev != nil && prev.Pending != nil {
			if prev.Pending.Revision != rec.Revision && prev.Pending.Digest != digest {
				st.Pending = prev.Pending
			} else if err := r.dropPending(ctx, app); err != nil {
				return nil, nil, false, err
			}
		}
		app.Status.Approval = st
		if st.Approved == nil && st.Pending == nil {
			app.Status.Approval = nil
		}
		if approved != nil {
			record.ApprovedBy, record.ApprovalDigest = approved.Approver, approved.Digest
		}
		return inside, approved, false, nil
	}
	pending, err := r.storePending(ctx, app, bundle, digest, rec)
	if err != nil {
		return nil, nil, false, err
	}
	var prev *approval.Bundle
	if approved != nil {
		prev = approved.Bundle
	}
	changes, err := approval.Compare(prev, bundle)
	if err != nil {
		return nil, nil, false, err
	}
	st.Pending = &kv1.PendingApproval{Revision: rec.Revision, Digest: digest, Author: rec.Author, Since: metav1.NewTime(pending.Since),
		Objects: boundedNames(bundle.Refs()), Added: boundedNames(changes.Added), Changed: boundedNames(changes.Changed),
		Removed: boundedNames(changes.Removed), Diff: changes.Diff}
	fresh := app.Status.Approval == nil || app.Status.Approval.Pending == nil || app.Status.Approval.Pending.Digest != digest
	app.Status.Approval = st
	msg := pendingMessage(app, st.Pending)
	setReady(app, false, kv1.ReasonAwaitingApproval, msg)
	app.Status.ObservedGeneration = app.Generation
	if fresh {
		r.recorder.Eventf(app, nil, corev1.EventTypeNormal, kv1.ReasonAwaitingApproval, "Sync", "%s", msg)
		r.notifier.notify(app, kv1.EventAwaitingApproval, AuditRecord{
			Time: time.Now(), App: app.Name, Namespace: app.Namespace, Revision: rec.Revision, Author: rec.Author, Committer: rec.Committer,
			Message: rec.Message, Trigger: rec.Trigger, ServiceAccount: serviceAccountOf(app), Result: kv1.ReasonAwaitingApproval,
			ApprovalDigest: digest, Changes: []AuditChange{},
		}, msg)
	}
	return nil, approved, true, nil
}

// pendingMessage is the Ready condition's message while rev waits.
func pendingMessage(app *kv1.Application, p *kv1.PendingApproval) string {
	var what []string
	for _, part := range []struct {
		n    int
		verb string
	}{{len(p.Added), "added"}, {len(p.Changed), "changed"}, {len(p.Removed), "removed"}} {
		if part.n > 0 {
			what = append(what, strconv.Itoa(part.n)+" "+part.verb)
		}
	}
	return fmt.Sprintf("%s: revision %s holds %d out-of-namespace object(s) (%s; %s); the last approved state runs. Run `keyless approve %s -n %s`",
		AwaitingApprovalMessage, kv1.ShortSHA(p.Revision), len(p.Objects), strings.Join(what, ", "), p.Digest, app.Name, app.Namespace)
}

func approvedMessage(rec *approval.Record) string {
	msg := fmt.Sprintf("out-of-namespace objects %s of revision %s approved by %s at %s", rec.Digest, kv1.ShortSHA(rec.Revision), rec.Approver, rec.At.UTC().Format(time.RFC3339))
	if rec.SelfApproved {
		msg += " (self-approved: the approver is the commit's author)"
	}
	return msg
}

// boundedNames keeps at most kv1.MaxPendingObjectNames names, the last
// saying how many more.
func boundedNames(names []string) []string {
	if len(names) <= kv1.MaxPendingObjectNames {
		return names
	}
	out := append([]string(nil), names[:kv1.MaxPendingObjectNames-1]...)
	return append(out, fmt.Sprintf("… and %d more", len(names)-kv1.MaxPendingObjectNames+1))
}

// checkApprovalNamespace refuses approvals without a namespace of the
// controller's own, or with one whose admin is a tenant (they could write
// their own approval records).
func (r *ApplicationReconciler) checkApprovalNamespace() error {
	if r.approvalNamespace == "" {
		return fmt.Errorf("%w: spec.syncPolicy.outOfNamespace approve needs the controller's own namespace (set --controller-namespace or $POD_NAMESPACE)", ErrNoApprovalNamespace)
	}
	if r.managesNamespace(r.approvalNamespace) {
		return fmt.Errorf("%w: the controller's namespace %s is also an Application namespace, whose admin could forge approvals; run the controller in a namespace of its own", ErrNoApprovalNamespace, r.approvalNamespace)
	}
	return nil
}

// approvalRecord reads app's approval record (nil: none), uncached: the
// controller may only get ConfigMaps in its own namespace.
func (r *ApplicationReconciler) approvalRecord(ctx context.Context, app *kv1.Application) (*approval.Record, error) {
	cm := &corev1.ConfigMap{}
	key := types.NamespacedName{Namespace: r.approvalNamespace, Name: approval.RecordName(app.Namespace, app.Name)}
	if err := r.apiReader.Get(ctx, key, cm); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading the approval record %s: %w", key, err)
	}
	return approval.RecordFromConfigMap(cm, app.Namespace, app.Name)
}

// storePending writes the bundle waiting for approval for `keyless
// approve` to read (unchanged when it is already stored: Since stays the
// time it was first held).
func (r *ApplicationReconciler) storePending(ctx context.Context, app *kv1.Application, bundle *approval.Bundle, digest string, rec kv1.SyncRecord) (*approval.Pending, error) {
	key := types.NamespacedName{Namespace: r.approvalNamespace, Name: approval.PendingName(app.Namespace, app.Name)}
	cm := &corev1.ConfigMap{}
	err := r.apiReader.Get(ctx, key, cm)
	switch {
	case err == nil:
		if old, err := approval.PendingFromConfigMap(cm, app.Namespace, app.Name); err == nil && old.Digest == digest && old.Revision == rec.Revision {
			return old, nil
		}
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("reading the pending approval %s: %w", key, err)
	}
	p := &approval.Pending{Namespace: app.Namespace, Application: app.Name, Digest: digest, Revision: rec.Revision,
		Author: rec.Author, Since: time.Now().Truncate(time.Second), Bundle: bundle}
	if st := app.Status.Approval; st != nil && st.Pending != nil && st.Pending.Digest == digest {
		p.Since = st.Pending.Since.Time
	}
	want, err := p.ConfigMap(r.approvalNamespace)
	if err != nil {
		return nil, fmt.Errorf("storing the out-of-namespace objects for approval: %w", err)
	}
	if cm.ResourceVersion != "" {
		want.ResourceVersion = cm.ResourceVersion
		if err := r.client.Update(ctx, want); err != nil {
			return nil, fmt.Errorf("storing the pending approval %s: %w", key, err)
		}
		return p, nil
	}
	if err := r.client.Create(ctx, want); err != nil {
		return nil, fmt.Errorf("storing the pending approval %s: %w", key, err)
	}
	return p, nil
}

// managesNamespace reports whether ns is one of the namespaces whose
// Applications this controller syncs.
func (r *ApplicationReconciler) managesNamespace(ns string) bool {
	return slices.Contains(r.namespaces, ns)
}

// dropPending deletes a pending bundle nothing waits on any more.
func (r *ApplicationReconciler) dropPending(ctx context.Context, app *kv1.Application) error {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: r.approvalNamespace, Name: approval.PendingName(app.Namespace, app.Name)}}
	if err := r.client.Delete(ctx, cm); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting the pending approval %s: %w", client.ObjectKeyFromObject(cm), err)
	}
	return nil
}

// approvalFailure is how a failed approval step is reported: a render
// whose out-of-namespace objects cannot be stored, or a controller that
// cannot hold approvals, waits for a change (Stalled); a failed read or
// write of the stored forms is retried.
func approvalFailure(err error, record *kv1.SyncRecord) stepFailure {
	permanent := errors.Is(err, ErrNoApprovalNamespace) || errors.Is(err, approval.ErrTooLarge) || errors.Is(err, approval.ErrForeign) || errors.Is(err, approval.ErrDigestMismatch)
	return stepFailure{reason: ReasonRefused, err: err, permanent: permanent, record: record}
}

// approvalNote is what a Synced Event adds for a revision whose
// out-of-namespace objects were approved.
func approvalNote(rec *approval.Record) string {
	if rec == nil {
		return ""
	}
	return "; out-of-namespace objects " + rec.Digest + " approved by " + rec.Approver
}

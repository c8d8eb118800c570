package controller

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/engine"
	"github.com/keyless-cd/keyless/internal/ledger"
)

// syncEvent is the Event a recorded sync emits (none when Reason is empty).
type syncEvent struct {
	Type, Reason, Message string
}

// recordSync completes rec (started with the revision, commit, trigger and
// start time; Result and Error set by the caller, Result Succeeded when
// empty) from the engine's result and records it where every sync is
// recorded: the status history (not for a deletion, whose Application is
// going), the audit line, and ev.
func (r *ApplicationReconciler) recordSync(app *kv1.Application, rec kv1.SyncRecord, res *engine.Result, ev syncEvent) {
	rec.FinishedAt = metav1.Now()
	if rec.Result == "" {
		rec.Result = kv1.SyncResultSucceeded
	}
	rec.Changes = changeSummary(res)
	rec.Changed = changedObjects(res)
	rec.Hooks = hookRecords(res)
	if rec.Trigger != TriggerDelete {
		addHistory(app, rec)
	}
	audit := AuditRecord{
		Time: rec.FinishedAt.Time, App: app.Name, Namespace: app.Namespace, Revision: rec.Revision,
		Author: rec.Author, Committer: rec.Committer, Signer: rec.Signer, Message: rec.Message, Trigger: rec.Trigger,
		ServiceAccount: serviceAccountOf(app), Result: rec.Result, Error: rec.Error, Changes: auditChanges(res), Hooks: rec.Hooks,
		ApprovedBy: rec.ApprovedBy, ApprovalDigest: rec.ApprovalDigest, WindowOverride: rec.WindowOverride,
		Approvers: rec.Approvers, PullRequest: rec.PullRequest, RenderedDigest: rec.RenderedDigest, DryRun: rec.DryRun,
	}
	r.audit.write(audit)
	r.writeLedger(app, audit)
	r.metrics.apps.observeRecord(app, rec)
	if ev.Reason != "" {
		r.recorder.Eventf(app, nil, ev.Type, ev.Reason, "Sync", "%s", ev.Message)
	}
	if event := syncEventOf(rec); event != "" {
		text := ev.Message
		if text == "" {
			text = fmt.Sprintf("%s %s: %s", kv1.ShortSHA(rec.Revision), rec.Result, rec.Changes)
		}
		r.notifier.notify(app, event, audit, text)
	}
}

// writeLedger appends a sync's audit record to the ledger, when there is
// one; a failed write is a Warning Event (the audit line and history
// still hold the sync).
func (r *ApplicationReconciler) writeLedger(app *kv1.Application, a AuditRecord) {
	if r.ledger == nil {
		return
	}
	changes := make([]string, 0, len(a.Changes))
	for _, c := range a.Changes {
		line := c.Kind + "/" + c.Name + " " + c.Action
		if c.UID != "" {
			line += " uid=" + c.UID + " resourceVersion=" + c.ResourceVersion
		}
		changes = append(changes, line)
	}
	if err := r.ledger.Append(ledger.Record{Time: a.Time, Kind: ledger.KindSync, Namespace: a.Namespace, App: a.App, Revision: a.Revision,
		Author: a.Author, Committer: a.Committer, Signer: a.Signer, Trigger: a.Trigger, Result: a.Result, Error: a.Error,
		Deployer: "system:serviceaccount:" + a.Namespace + ":" + a.ServiceAccount, Changes: changes,
		ApprovedBy: a.ApprovedBy, ApprovalDigest: a.ApprovalDigest, WindowOverride: a.WindowOverride,
		Approvers: a.Approvers, PullRequest: a.PullRequest, RenderedDigest: a.RenderedDigest, DryRun: a.DryRun}); err != nil {
		r.recorder.Eventf(app, nil, corev1.EventTypeWarning, "LedgerWriteFailed", "Sync", "appending the sync to the ledger: %v", err)
	}
	r.ledgerShipper.Poke()
}

// writeLedgerEvent appends an override or a pause of app to the ledger,
// when there is one (rec's Kind and its own fields set by the caller).
func (r *ApplicationReconciler) writeLedgerEvent(app *kv1.Application, rec ledger.Record) {
	if r.ledger == nil {
		return
	}
	rec.Time, rec.Namespace, rec.App = time.Now(), app.Namespace, app.Name
	if err := r.ledger.Append(rec); err != nil {
		r.recorder.Eventf(app, nil, corev1.EventTypeWarning, "LedgerWriteFailed", "Sync", "appending the %s to the ledger: %v", rec.Kind, err)
	}
	r.ledgerShipper.Poke()
}

// renderedDigest is the sha256 of objs, sorted by their identity, each as
// canonical JSON (map keys sorted): the same objects give the same digest.
func renderedDigest(objs []*unstructured.Unstructured) string {
	sorted := slices.Clone(objs)
	slices.SortFunc(sorted, func(a, b *unstructured.Unstructured) int {
		return strings.Compare(engine.RefOf(a).ID().String(), engine.RefOf(b).ID().String())
	})
	h := sha256.New()
	for _, o := range sorted {
		b, err := json.Marshal(o.Object)
		if err != nil {
			return ""
		}
		_, _ = h.Write(b)
		_, _ = h.Write([]byte{'\n'})
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

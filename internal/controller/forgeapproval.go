package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"golang.org/x/sync/singleflight"
	corev1 "k8s.io/api/core/v1"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/credential"
	"github.com/keyless-cd/keyless/internal/egress"
	"github.com/keyless-cd/keyless/internal/forge"
	"github.com/keyless-cd/keyless/internal/ledger"
)

// maxKnownApprovals bounds the approvals remembered (then forgotten all at
// once: asking the forge again is only slower).
const maxKnownApprovals = 4096

// approvalKey is one commit under one rule: an approval found for it stays
// true (a forge cannot un-merge a request), so it is asked for once.
type approvalKey struct {
	repo, sha, branch, provider, api string
	min                              int32
}

// forgeApprovals asks forges whether revisions were approved
// (spec.source.verify.approvals) and remembers the approvals found. A
// refusal is not remembered here: the Application stalls on it until a
// new revision, a spec change or a `keyless sync`, which asks again (an
// approval given after the merge then counts).
type forgeApprovals struct {
	http          *http.Client
	allowInsecure bool

	mu    sync.Mutex
	known map[approvalKey]forge.Approval

	// flight asks the forge once for the Applications that need the same
	// answer at the same time — a push to a monorepo whose Applications
	// share a rule and a token — instead of once per Application (a
	// forge's API rate limit is per token). Keyed by the commit, the rule
	// and the token's hash: a token that cannot see a request never
	// answers for another that can.
	flight singleflight.Group
}

func newForgeApprovals(eg egress.Options) *forgeApprovals {
	return &forgeApprovals{http: egress.NewClient(eg), allowInsecure: eg.AllowLoopback, known: map[approvalKey]forge.Approval{}}
}

func (f *forgeApprovals) lookup(k approvalKey) (forge.Approval, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.known[k]
	return a, ok
}

func (f *forgeApprovals) remember(k approvalKey, a forge.Approval) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.known) >= maxKnownApprovals {
		clear(f.known)
	}
	f.known[k] = a
}

// ask calls fn for key and token, or waits for the call already asking
// the same and takes its answer.
func (f *forgeApprovals) ask(key approvalKey, token []byte, fn func() (forge.Approval, error)) (forge.Approval, error) {
	h := sha256.Sum256(token)
	k := fmt.Sprintf("%s\x00%s\x00%s\x00%s\x00%s\x00%d\x00%s", key.repo, key.sha, key.branch, key.provider, key.api, key.min, hex.EncodeToString(h[:]))
	v, err, _ := f.flight.Do(k, func() (any, error) { return fn() })
	a, _ := v.(forge.Approval)
	return a, err
}

// approvalMissingError is a revision the forge does not show approved as
// the rule asks: ApprovalMissing, until the revision, the rule or a
// request changes it.
type approvalMissingError struct{ err error }

func (e *approvalMissingError) Error() string { return e.err.Error() }
func (e *approvalMissingError) Unwrap() error { return e.err }

// checkForgeApprovals enforces spec.source.verify.approvals on the commit
// about to be rendered and applied: the approvers and the request go into
// record; the first time a commit's approval is found it gets a ledger
// record of its own. Errors: *approvalMissingError for a refusal, anything
// else (the forge or the token failed) is retried and never taken for an
// approval.
func (r *ApplicationReconciler) checkForgeApprovals(ctx context.Context, app *kv1.Application, commit *provenance, record *kv1.SyncRecord) error {
	v := app.Spec.Source.Verify
	if v == nil || v.Approvals == nil || commit.commit == nil {
		return nil
	}
	rule := v.Approvals
	key := approvalKey{repo: app.Spec.Source.RepoURL, sha: record.Revision, branch: commit.branch, provider: rule.Provider,
		api: rule.APIURL, min: rule.MinApprovers}
	a, known := r.approvals.lookup(key)
	if !known {
		a, known = approvedWhenApplied(app, key.sha)
	}
	if !known {
		var err error
		if a, err = r.askForge(ctx, app, key); err != nil {
			return err
		}
		r.approvals.remember(key, a)
		r.recorder.Eventf(app, nil, corev1.EventTypeNormal, kv1.ReasonChangeApproved, "Verify", "%s approved at the forge by %s (%s)",
			kv1.ShortSHA(key.sha), strings.Join(a.Approvers, ", "), a.Request)
		r.writeLedgerEvent(app, ledger.Record{Kind: ledger.KindApproval, Revision: key.sha, Author: record.Author,
			Approvers: a.Approvers, PullRequest: a.Request})
	}
	record.Approvers, record.PullRequest = a.Approvers, a.Request
	return nil
}

// askForge reads the rule's token (a forge credential bound to the
// repository's host) and asks the forge how key.sha reached its branch.
func (r *ApplicationReconciler) askForge(ctx context.Context, app *kv1.Application, key approvalKey) (forge.Approval, error) {
	rule := app.Spec.Source.Verify.Approvals
	vals, err := readSecretKeys(ctx, r.apiReader, secretUse{namespace: app.Namespace, name: rule.SecretRef.Name, use: credential.Forge,
		field: "spec.source.verify.approvals.secretRef", target: key.repo, allowInsecure: r.approvals.allowInsecure}, kv1.CommitStatusTokenKey)
	if err != nil {
		return forge.Approval{}, err
	}
	cl, err := forge.New(forge.Options{Provider: rule.Provider, RepoURL: key.repo, APIURL: rule.APIURL, Token: string(vals[0]),
		AllowInsecureHTTP: r.approvals.allowInsecure, HTTP: r.approvals.http})
	if err != nil {
		return forge.Approval{}, err
	}
	a, err := r.approvals.ask(key, vals[0], func() (forge.Approval, error) {
		cr, err := cl.ChangeRequest(ctx, key.sha, key.branch)
		if err != nil {
			return forge.Approval{}, err
		}
		return cr.Check(key.sha, key.branch, int(key.min))
	})
	if err == nil {
		return a, nil
	}
	if errors.Is(err, forge.ErrApprovalMissing) || errors.Is(err, forge.ErrTooLarge) || errors.Is(err, forge.ErrConfig) {
		return forge.Approval{}, &approvalMissingError{err: fmt.Errorf("spec.source.verify.approvals: %w", err)}
	}
	return forge.Approval{}, fmt.Errorf("spec.source.verify.approvals: %w", err)
}

// forgeApprovalFailure is a failed approval check: a refusal stalls with
// ApprovalMissing, an outage is retried with ApprovalCheckFailed.
func forgeApprovalFailure(err error, record *kv1.SyncRecord) stepFailure {
	if me := (*approvalMissingError)(nil); errors.As(err, &me) {
		return stepFailure{reason: kv1.ReasonApprovalMissing, err: err, permanent: true, record: record}
	}
	// No history entry per retry of an outage: the condition says it.
	return stepFailure{reason: kv1.ReasonApprovalCheckFailed, err: err}
}

// approversNote is the Synced Event's note of the forge's approvers.
func approversNote(rec kv1.SyncRecord) string {
	if len(rec.Approvers) == 0 {
		return ""
	}
	return "; approved by " + strings.Join(rec.Approvers, ", ") + " in " + rec.PullRequest
}

// approvedWhenApplied is the approval recorded in history for sha when sha
// is the revision applied under the current spec: a drift revert after a
// restart re-applies what was approved without asking the forge again (so
// a forge outage does not stop self-heal).
func approvedWhenApplied(app *kv1.Application, sha string) (forge.Approval, bool) {
	if sha != app.Status.LastAppliedRevision || app.Status.ObservedGeneration != app.Generation {
		return forge.Approval{}, false
	}
	for _, h := range app.Status.History {
		if h.Revision == sha && h.Result == kv1.SyncResultSucceeded && len(h.Approvers) > 0 {
			return forge.Approval{Approvers: h.Approvers, Request: h.PullRequest}, true
		}
	}
	return forge.Approval{}, false
}

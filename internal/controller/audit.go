package controller

import (
	"encoding/json"
	"io"
	"sync"
	"time"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/engine"
)

// AuditChange is one object's change in an audit record.
type AuditChange struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Action string `json:"action"`
	// UID and ResourceVersion are the object's as written.
	UID             string `json:"uid,omitempty"`
	ResourceVersion string `json:"resourceVersion,omitempty"`
}

// auditKind marks keyless's audit lines (the "audit" field).
const auditKind = "keyless.dev/sync"

// AuditRecord is the JSON line written for every sync: who did what.
type AuditRecord struct {
	Audit          string        `json:"audit"` // always auditKind
	Time           time.Time     `json:"time"`
	App            string        `json:"app"`
	Namespace      string        `json:"namespace"`
	Revision       string        `json:"revision"`
	Author         string        `json:"author,omitempty"`
	Committer      string        `json:"committer,omitempty"`
	Signer         string        `json:"signer,omitempty"`
	Message        string        `json:"message,omitempty"`
	Trigger        string        `json:"trigger"`
	ServiceAccount string        `json:"serviceAccount"`
	Result         string        `json:"result"`
	Error          string        `json:"error,omitempty"`
	Changes        []AuditChange `json:"changes"`
	// ApprovedBy and ApprovalDigest name the approval that covers the
	// revision's out-of-namespace objects (spec.syncPolicy.outOfNamespace:
	// approve); ApprovalDigest alone, on an AwaitingApproval line, names
	// what waits.
	ApprovedBy     string `json:"approvedBy,omitempty"`
	ApprovalDigest string `json:"approvalDigest,omitempty"`
	// WindowOverride names who synced through a closed sync window, and why.
	WindowOverride string `json:"windowOverride,omitempty"`
	// Approvers and PullRequest: who approved the revision at the forge,
	// and the pull/merge request it was merged through
	// (spec.source.verify.approvals).
	Approvers   []string `json:"approvers,omitempty"`
	PullRequest string   `json:"pullRequest,omitempty"`
	// RenderedDigest and DryRun: what was applied, and the API server's
	// dry run of it.
	RenderedDigest string `json:"renderedDigest,omitempty"`
	DryRun         string `json:"dryRun,omitempty"`
	// Hooks are the hook runs of the sync.
	Hooks []kv1.HookRecord `json:"hooks,omitempty"`
}

// auditLog writes one JSON object per line.
type auditLog struct {
	mu sync.Mutex
	w  io.Writer
}

func (a *auditLog) write(rec AuditRecord) {
	if a == nil || a.w == nil {
		return
	}
	rec.Audit = auditKind
	b, err := json.Marshal(rec)
	if err != nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	_, _ = a.w.Write(append(b, '\n'))
}

func auditChanges(res *engine.Result) []AuditChange {
	out := []AuditChange{}
	if res == nil {
		return out
	}
	for _, c := range res.Changes {
		if c.Action == engine.ActionUnchanged {
			continue
		}
		out = append(out, AuditChange{Kind: c.Ref.Kind, Name: c.Ref.Name, Action: string(c.Action), UID: c.UID, ResourceVersion: c.ResourceVersion})
	}
	return out
}

func serviceAccountOf(app *kv1.Application) string {
	if app.Spec.ServiceAccountName != "" {
		return app.Spec.ServiceAccountName
	}
	return kv1.DefaultServiceAccountName
}

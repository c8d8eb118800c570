// Package evidence builds an auditor's pack from the controller's ledger:
// each change with who wrote, approved, signed and applied it, the
// controls it is evidence for, and — given the apiserver's audit log —
// every write in the namespaces reconciled with the record that explains
// it.
package evidence

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keyless-cd/keyless/internal/ledger"
)

// Pack is an auditor's pack: the ledger's changes in a window, the
// controls they evidence and, with an audit log, the reconciliation of
// the apiserver's writes with them.
type Pack struct {
	GeneratedAt time.Time `json:"generatedAt"`
	// From and To bound the records and writes (zero: open).
	From      time.Time `json:"from,omitzero"`
	To        time.Time `json:"to,omitzero"`
	Namespace string    `json:"namespace,omitempty"`
	Ledger    Ledger    `json:"ledger"`
	Changes   []Change  `json:"changes"`
	Controls  []Control `json:"controls"`
	// Audit is the reconciliation with the apiserver's audit log, when
	// one was given.
	Audit *Reconciliation `json:"audit,omitempty"`
}

// Ledger says which ledger the pack was made from and that it verified.
type Ledger struct {
	File string `json:"file"`
	// Records is the number of records in the whole ledger, all verified
	// (chain and signatures) before anything was exported.
	Records int `json:"records"`
	// LastSeq and LastHash identify the ledger's last record: a later
	// export of the same ledger continues from it.
	LastSeq  int64  `json:"lastSeq"`
	LastHash string `json:"lastHash"`
}

// Change is one ledger record as an auditor reads it.
type Change struct {
	Seq       int64     `json:"seq"`
	Time      time.Time `json:"time"`
	Kind      string    `json:"kind"`
	Namespace string    `json:"namespace"`
	App       string    `json:"application"`
	Revision  string    `json:"revision,omitempty"`
	// WrittenBy is the commit's author, CommittedBy its committer.
	WrittenBy   string `json:"writtenBy,omitempty"`
	CommittedBy string `json:"committedBy,omitempty"`
	// SignedBy is the verified signer (key or pipeline), "" when the
	// Application requires none.
	SignedBy string `json:"signedBy,omitempty"`
	// ApprovedBy is the person who approved out-of-namespace objects.
	ApprovedBy     string `json:"approvedBy,omitempty"`
	ApprovalDigest string `json:"approvalDigest,omitempty"`
	// Approvers are the people who approved the revision's pull/merge
	// request (PullRequest) at the forge, none of them its author or
	// merger (spec.source.verify.approvals).
	Approvers   []string `json:"approvers,omitempty"`
	PullRequest string   `json:"pullRequest,omitempty"`
	// RenderedDigest is the sha256 of what was applied; DryRun the API
	// server's dry run of it before the write (Passed, Failed).
	RenderedDigest string `json:"renderedDigest,omitempty"`
	DryRun         string `json:"dryRun,omitempty"`
	// AppliedAs is the identity the objects were written as.
	AppliedAs      string   `json:"appliedAs,omitempty"`
	Trigger        string   `json:"trigger,omitempty"`
	Result         string   `json:"result,omitempty"`
	Error          string   `json:"error,omitempty"`
	Objects        []string `json:"objects,omitempty"`
	WindowOverride string   `json:"windowOverride,omitempty"`
	// By, Reason, Window and Until are an override's or a pause's: who,
	// why, which window, until when.
	By     string    `json:"by,omitempty"`
	Reason string    `json:"reason,omitempty"`
	Window string    `json:"window,omitempty"`
	Until  time.Time `json:"until,omitzero"`
	// Writes are the audit IDs of the apiserver writes this change made
	// (with an audit log).
	Writes []string `json:"writes,omitempty"`
	// Controls are the IDs of the controls this change is evidence for.
	Controls []string `json:"controls"`
}

// Options select what a pack holds.
type Options struct {
	// From and To bound the records (zero: open).
	From, To time.Time
	// Namespace selects one namespace ("": all).
	Namespace string
	// Now is the pack's time (default time.Now).
	Now time.Time
}

// NewPack starts a pack of the ledger file; Add each of its verified
// records, then Verified with how many there were and the last.
func NewPack(file string, opts Options) *Pack {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	return &Pack{GeneratedAt: opts.Now.UTC(), From: opts.From, To: opts.To, Namespace: opts.Namespace,
		Ledger: Ledger{File: file}, Changes: []Change{}, Controls: Controls}
}

// MaxChanges bounds the changes of one pack.
const MaxChanges = 200_000

// ErrTooManyChanges is returned by Add past MaxChanges.
var ErrTooManyChanges = fmt.Errorf("more than %d changes in the window: narrow --from/--to or -n", MaxChanges)

// Add adds r when it is in the pack's window and namespace.
func (p *Pack) Add(r ledger.Record) error {
	if !inWindow(r.Time, p.From, p.To) || (p.Namespace != "" && r.Namespace != p.Namespace) {
		return nil
	}
	if len(p.Changes) >= MaxChanges {
		return ErrTooManyChanges
	}
	p.Changes = append(p.Changes, changeOf(r))
	return nil
}

// Verified records that the whole ledger, n records, verified, last
// being its last record (nil: empty).
func (p *Pack) Verified(n int, last *ledger.Record) {
	p.Ledger.Records = n
	if last != nil {
		p.Ledger.LastSeq, p.Ledger.LastHash = last.Seq, last.Hash
	}
}

func inWindow(t, from, to time.Time) bool {
	return !t.Before(from) && (to.IsZero() || !t.After(to))
}

func changeOf(r ledger.Record) Change {
	c := Change{Seq: r.Seq, Time: r.Time.UTC(), Kind: r.Kind, Namespace: r.Namespace, App: r.App, Revision: r.Revision,
		WrittenBy: r.Author, CommittedBy: r.Committer, SignedBy: r.Signer, ApprovedBy: r.ApprovedBy, ApprovalDigest: r.ApprovalDigest,
		AppliedAs: r.Deployer, Trigger: r.Trigger, Result: r.Result, Error: r.Error, Objects: r.Changes, WindowOverride: r.WindowOverride,
		By: r.By, Reason: r.Reason, Window: r.Window, Until: r.Until, Approvers: r.Approvers, PullRequest: r.PullRequest,
		RenderedDigest: r.RenderedDigest, DryRun: r.DryRun}
	c.Controls = controlsOf(c)
	return c
}

// object is the kind and name a change line ("Deployment/web configured")
// names.
func object(line string) (kind, name string) {
	ref, _, _ := strings.Cut(line, " ")
	kind, name, _ = strings.Cut(ref, "/")
	return kind, name
}

// resourceOf says whether resource (an audit objectRef's, "deployments")
// is kind's (Deployment): Kubernetes' plural of its lower-case name.
func resourceOf(kind, resource string) bool {
	resource, _, _ = strings.Cut(resource, "/") // a subresource belongs to its object
	k := strings.ToLower(kind)
	switch {
	case resource == k || resource == k+"s" || resource == k+"es":
		return true
	case strings.HasSuffix(k, "y") && resource == strings.TrimSuffix(k, "y")+"ies":
		return true
	}
	return false
}

// lists says whether c's objects include the object w wrote.
func (c Change) lists(w Write) bool {
	return slices.ContainsFunc(c.Objects, func(line string) bool {
		kind, name := object(line)
		return name == w.Name && resourceOf(kind, w.Resource)
	})
}

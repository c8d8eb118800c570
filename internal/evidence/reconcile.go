package evidence

import (
	"strings"
	"time"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

// maxSyncSpan is how long before its record a sync's write may be: a
// sync's writes happen between its start and its record, and no sync runs
// longer than the controller's --sync-timeout (15m by default); a window
// of an hour leaves room for a longer one.
const maxSyncSpan = time.Hour

// clockSlack allows a record written a moment before the apiserver
// logged the write's completion.
const clockSlack = 5 * time.Second

// Reconciliation is the apiserver's writes in the pack's window and
// namespaces against the ledger's records.
type Reconciliation struct {
	// Log names the audit log read; Skipped counts its lines that were not
	// audit events (or too long).
	Log     string `json:"log"`
	Skipped int    `json:"skipped,omitempty"`
	// Writes is the number of persisted writes read.
	Writes int `json:"writes"`
	// Matched is the number made by an Application's deployer during a
	// sync the ledger records, the object named in the record.
	Matched int `json:"matched"`
	// WithoutRecord are writes made as a deployer that no record explains:
	// a sync missing from the ledger (or a record removed from a copy).
	WithoutRecord []Write `json:"writesWithoutRecord"`
	// Outside are writes by any other identity (people, other controllers,
	// kube-controller-manager's own updates of the objects): changes made
	// outside keyless, for the auditor to account for.
	Outside []Write `json:"writesOutsideKeyless"`
}

// Reconcile matches writes with p's changes: a write made as a deployer is
// the record's whose Application wrote as that identity in that namespace,
// whose objects include it, and which was recorded within maxSyncSpan
// after it. The changes gain the writes' audit IDs.
func (p *Pack) Reconcile(log string, writes []Write, skipped int) {
	rec := &Reconciliation{Log: log, Skipped: skipped, Writes: len(writes), WithoutRecord: []Write{}, Outside: []Write{}}
	deployers := map[string]bool{}
	for _, c := range p.Changes {
		if c.AppliedAs != "" {
			deployers[c.AppliedAs] = true
		}
	}
	for _, w := range writes {
		if !deployers[w.Identity()] && !isDeployer(w.Identity()) {
			rec.Outside = append(rec.Outside, w)
			continue
		}
		if i := p.changeFor(w); i >= 0 {
			p.Changes[i].Writes = append(p.Changes[i].Writes, w.AuditID)
			rec.Matched++
			continue
		}
		rec.WithoutRecord = append(rec.WithoutRecord, w)
	}
	p.Audit = rec
}

// changeFor is the index of the change that made w, or -1: by w's identity
// in w's namespace, listing w's object, the first recorded at or after w
// (within maxSyncSpan); failing that, one recorded up to clockSlack before
// it (the controller's clock a moment behind the API server's).
func (p *Pack) changeFor(w Write) int {
	late := -1
	for i, c := range p.Changes {
		if c.Namespace != w.Namespace || c.AppliedAs != w.Identity() || !c.lists(w) {
			continue
		}
		switch d := c.Time.Sub(w.Time); {
		case d >= 0 && d <= maxSyncSpan:
			return i
		case d < 0 && d >= -clockSlack:
			late = i
		}
	}
	return late
}

// isDeployer says whether identity is a namespace's default deployer
// ServiceAccount (system:serviceaccount:NS:keyless-deployer), also when
// no record of the window names it.
func isDeployer(identity string) bool {
	const prefix = "system:serviceaccount:"
	if !strings.HasPrefix(identity, prefix) {
		return false
	}
	_, sa, ok := strings.Cut(strings.TrimPrefix(identity, prefix), ":")
	return ok && sa == kv1.DefaultServiceAccountName
}

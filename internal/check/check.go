// Package check answers `keyless check`, as `flux check` does for Flux:
// before an install (Pre), whether the cluster and the person installing can
// take keyless; after it (Installed), whether the install works — the CRD,
// the controller and its leader, the webhook's endpoints and each managed
// namespace's RBAC. Every check reads only; none writes to the cluster
// except server-side dry-runs.
package check

import (
	"fmt"
	"io"
	"time"

	"github.com/keyless-cd/keyless/internal/install"
	"github.com/keyless-cd/keyless/internal/version"
)

// Status is a check's outcome.
type Status string

// The outcomes, from best to worst.
const (
	StatusOK      Status = "ok"
	StatusWarning Status = "warning"
	StatusFailed  Status = "failed"
)

// Result is one check: what was checked and what was found.
type Result struct {
	Check   string `json:"check"`
	Status  Status `json:"status"`
	Message string `json:"message"`
}

// Report is the results of a run, in the order they were checked.
type Report struct {
	Results []Result `json:"results"`
}

func (r *Report) addf(check string, st Status, format string, args ...any) {
	r.Results = append(r.Results, Result{Check: check, Status: st, Message: fmt.Sprintf(format, args...)})
}

// Failed reports whether any check failed.
func (r *Report) Failed() bool {
	for _, res := range r.Results {
		if res.Status == StatusFailed {
			return true
		}
	}
	return false
}

// Print writes the report as `flux check` does: a mark, the check and what
// was found, one per line.
func (r *Report) Print(w io.Writer) error {
	marks := map[Status]string{StatusOK: "✔", StatusWarning: "!", StatusFailed: "✗"}
	for _, res := range r.Results {
		if _, err := fmt.Fprintf(w, "%s %s: %s\n", marks[res.Status], res.Check, res.Message); err != nil {
			return err
		}
	}
	return nil
}

// MinKubernetesMinor is the oldest Kubernetes minor release (1.x) keyless
// supports: CRD validation ratcheting, ValidatingAdmissionPolicy (the
// credential-mount policy) and structured authentication configuration
// (keyless oidc) are GA or beta from 1.30.
const MinKubernetesMinor = 30

// Options configure a check. Zero values take the documented defaults.
type Options struct {
	// ControllerNamespace is where the controller runs. Default
	// install.DefaultControllerNamespace.
	ControllerNamespace string
	// ClientVersion is compared with the cluster's versions. Default
	// version.Version().
	ClientVersion string
	// Now is the clock for the leader Lease's age. Default time.Now.
	Now func() time.Time
}

func (o *Options) defaults() {
	if o.ControllerNamespace == "" {
		o.ControllerNamespace = install.DefaultControllerNamespace
	}
	if o.ClientVersion == "" {
		o.ClientVersion = version.Version()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

package evidence

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

// Limits of an apiserver audit log read for an export: a line longer than
// MaxAuditLine (a request logged at RequestResponse level with a large
// body) is skipped and counted, more than MaxAuditEvents writes fail the
// export (narrow --from/--to).
const (
	MaxAuditLine   = 4 << 20
	MaxAuditEvents = 1_000_000
)

// Write is one persisted write the apiserver logged in a namespace.
type Write struct {
	Time time.Time `json:"time"`
	User string    `json:"user"`
	// As is the identity the request impersonated ("" when none): the
	// controller writes as each Application's deployer.
	As        string `json:"as,omitempty"`
	Verb      string `json:"verb"`
	Resource  string `json:"resource"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// AuditID is the apiserver's ID of the request.
	AuditID string `json:"auditID"`
}

// Identity is who the write was made as: the impersonated user, else the
// user.
func (w Write) Identity() string {
	if w.As != "" {
		return w.As
	}
	return w.User
}

// writeVerbs are the verbs that persist something.
var writeVerbs = []string{"create", "update", "patch", "delete", "deletecollection"}

// ReadAuditLog reads the writes of an apiserver JSON audit log (one
// audit.k8s.io/v1 Event per line, as --audit-log-path writes it) made in
// the window [from, to] in namespace ("" for all): completed, successful,
// not dry runs. Lines that are not events, and lines over MaxAuditLine,
// are skipped and counted in skipped.
func ReadAuditLog(r io.Reader, namespace string, from, to time.Time) (writes []Write, skipped int, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	line := 0
	for {
		raw, tooLong, rerr := readLine(br, MaxAuditLine)
		if len(raw) > 0 || tooLong {
			line++
			switch w, ok := parseWrite(raw, tooLong); {
			case !ok:
				skipped++
			case w == nil:
			case namespace != "" && w.Namespace != namespace, w.Time.Before(from), !to.IsZero() && w.Time.After(to):
			default:
				if len(writes) >= MaxAuditEvents {
					return nil, skipped, fmt.Errorf("more than %d writes in the audit log's window (at line %d): narrow --from/--to or -n", MaxAuditEvents, line)
				}
				writes = append(writes, *w)
			}
		}
		if errors.Is(rerr, io.EOF) {
			return writes, skipped, nil
		}
		if rerr != nil {
			return nil, skipped, fmt.Errorf("audit log line %d: %w", line+1, rerr)
		}
	}
}

// readLine reads one line of at most limit bytes; a longer one is read
// to its end and reported as tooLong with no bytes.
func readLine(br *bufio.Reader, limit int) (line []byte, tooLong bool, err error) {
	for {
		chunk, isPrefix, err := br.ReadLine()
		if !tooLong {
			if len(line)+len(chunk) > limit {
				tooLong, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		if err != nil || !isPrefix {
			return line, tooLong, err
		}
	}
}

// parseWrite returns the write raw logs (nil when it is not a completed,
// successful, persisted write of a namespaced object); ok is false when
// raw is not an audit event.
func parseWrite(raw []byte, tooLong bool) (w *Write, ok bool) {
	if tooLong {
		return nil, false
	}
	var e auditv1.Event
	if err := json.Unmarshal(raw, &e); err != nil || e.Kind != "Event" {
		return nil, false
	}
	if e.Stage != auditv1.StageResponseComplete || !slices.Contains(writeVerbs, e.Verb) || e.ObjectRef == nil ||
		e.ObjectRef.Namespace == "" || e.ResponseStatus == nil || e.ResponseStatus.Code >= 300 ||
		strings.Contains(e.RequestURI, "dryRun=") {
		return nil, true
	}
	w = &Write{Time: e.StageTimestamp.UTC(), User: e.User.Username, Verb: e.Verb, Resource: e.ObjectRef.Resource,
		Namespace: e.ObjectRef.Namespace, Name: e.ObjectRef.Name, AuditID: string(e.AuditID)}
	if e.ObjectRef.Subresource != "" {
		w.Resource += "/" + e.ObjectRef.Subresource
	}
	if e.ImpersonatedUser != nil {
		w.As = e.ImpersonatedUser.Username
	}
	return w, true
}

package clustertest

import (
	"bufio"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
)

// AuditEvent is the part of an apiserver audit event tests look at.
type AuditEvent struct {
	Verb       string `json:"verb"`
	RequestURI string `json:"requestURI"`
	Stage      string `json:"stage"`
	User       struct {
		Username string `json:"username"`
	} `json:"user"`
	ImpersonatedUser *struct {
		Username string `json:"username"`
	} `json:"impersonatedUser"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
		Subresource string `json:"subresource"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
}

// Mutating reports whether the event persisted a change: a create, update,
// patch or delete that was not a dry run.
func (e AuditEvent) Mutating() bool {
	switch e.Verb {
	case "create", "update", "patch", "delete", "deletecollection", "apply":
	default:
		return false
	}
	return !strings.Contains(e.RequestURI, "dryRun=All")
}

// WritesOutside returns the persisted writes logged so far made by one of
// users (as themselves or impersonating) in a namespace other than
// allowed, or to a cluster-scoped object: what a namespaced tool must never do.
func (c *Cluster) WritesOutside(t testing.TB, users []string, allowed ...string) []AuditEvent {
	t.Helper()
	var out []AuditEvent
	for _, e := range c.allEvents(t) {
		if !e.Mutating() || e.ObjectRef == nil || slices.Contains(allowed, e.ObjectRef.Namespace) || slices.Contains(reviews, e.ObjectRef.Resource) {
			continue
		}
		who := e.User.Username
		if e.ImpersonatedUser != nil {
			if slices.Contains(users, e.ImpersonatedUser.Username) {
				out = append(out, e)
				continue
			}
		}
		if slices.Contains(users, who) {
			out = append(out, e)
		}
	}
	return out
}

// AuditEvents returns the completed requests logged so far that touched namespace.
func (c *Cluster) AuditEvents(t testing.TB, namespace string) []AuditEvent {
	t.Helper()
	var out []AuditEvent
	for _, e := range c.allEvents(t) {
		if e.ObjectRef != nil && e.ObjectRef.Namespace == namespace {
			out = append(out, e)
		}
	}
	return out
}

// reviews are "create" requests that persist nothing (access and identity checks).
var reviews = []string{"selfsubjectaccessreviews", "subjectaccessreviews", "selfsubjectreviews", "tokenreviews", "selfsubjectrulesreviews"}

// allEvents returns every completed request logged so far.
func (c *Cluster) allEvents(t testing.TB) []AuditEvent {
	t.Helper()
	f, err := os.Open(c.AuditLogPath)
	if err != nil {
		t.Fatalf("opening audit log: %v", err)
	}
	defer func() { _ = f.Close() }()
	var out []AuditEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e AuditEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			continue
		}
		if e.Stage == "ResponseComplete" {
			out = append(out, e)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading audit log: %v", err)
	}
	return out
}

// Writes returns the persisted (non-dry-run) writes logged so far in namespace.
func (c *Cluster) Writes(t testing.TB, namespace string) []AuditEvent {
	t.Helper()
	var out []AuditEvent
	for _, e := range c.AuditEvents(t, namespace) {
		if e.Mutating() {
			out = append(out, e)
		}
	}
	return out
}

// Actor is who made the request: the impersonated user when there is one.
func (e AuditEvent) Actor() string {
	if e.ImpersonatedUser != nil {
		return e.ImpersonatedUser.Username
	}
	return e.User.Username
}

// ObjectWrites returns the successful persisted writes logged so far to
// objects themselves, in every namespace and cluster-scoped: not their
// subresources (status a controller updates) and not access reviews.
func (c *Cluster) ObjectWrites(t testing.TB) []AuditEvent {
	t.Helper()
	var out []AuditEvent
	for _, e := range c.allEvents(t) {
		if !e.Mutating() || e.ObjectRef == nil || e.ObjectRef.Subresource != "" || slices.Contains(reviews, e.ObjectRef.Resource) ||
			e.ResponseStatus == nil || e.ResponseStatus.Code >= 300 {
			continue
		}
		out = append(out, e)
	}
	return out
}

package ui

import (
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/forge"
)

// page is what every page's layout shows.
type page struct {
	Title string
	// Viewer is the username the API server knows the viewer by.
	Viewer string
}

// appRow is one Application in the list, and the head of its own page.
type appRow struct {
	Namespace, Name string
	Sync, Health    string
	// Operation says where a running sync is ("PreSync wave 0"), or "".
	Operation   string
	Revision    string
	RevisionURL string
	Author      string
	LastSync    string
	// Ready is the Ready condition's state (Ready, Progressing, a failure's
	// reason such as RenderFailed, Unknown), Message its message and
	// Failing whether it is a failure (ReadyState).
	Ready   string
	Message string
	Failing bool
	// Held says what holds syncs back now: a closed sync window, a pause
	// of self-heal (Application.Held), or "".
	Held string
}

// ReadyClass is the Ready badge's colour: a failure is bad whatever Sync
// and Health say (both are Unknown before a first sync).
func (r appRow) ReadyClass() string {
	switch {
	case r.Failing:
		return "bad"
	case r.Ready == "Ready":
		return "ok"
	case r.Ready == kv1.SyncStatusUnknown:
		return "unknown"
	}
	return statusClass(r.Ready)
}

func (r appRow) Path() string { return "/apps/" + r.Namespace + "/" + r.Name }

// count is one figure at the top of the list.
type count struct {
	Label string
	N     int
}

// listPage is the Applications page.
type listPage struct {
	page
	Rows   []appRow
	Counts []count
	// Notes say what could not be listed (a namespace the viewer may not read).
	Notes []string
	// Filter is the form's current choice; Namespaces its options.
	FilterNamespace, FilterStatus string
	Namespaces                    []string
	Statuses                      []string
}

// statusFilters are the choices of the list's status filter: sync
// statuses, then health statuses.
var statusFilters = []string{statusFailing, kv1.SyncStatusSynced, kv1.SyncStatusOutOfSync, kv1.HealthHealthy, kv1.HealthProgressing, kv1.HealthDegraded, kv1.HealthMissing, kv1.HealthUnknown}

// condView is one condition of an Application.
type condView struct {
	Type, Status, Reason, Message, Age string
	// Class is ok, warn or bad: what the condition means for the viewer.
	Class string
}

// historyView is one sync of the history, with its audit record.
type historyView struct {
	Revision, RevisionURL, Result, Trigger string
	Author, Committer, Signer, Finished    string
	Changes, Message, Error, Duration      string
	Hooks                                  []kv1.HookRecord
	Audit                                  []field
}

// field is one name: value line of an audit record.
type field struct{ Name, Value string }

// eventView is one Kubernetes Event of the Application.
type eventView struct {
	Type, Reason, Message, Age string
	Count                      int32
}

// appPage is one Application's page.
type appPage struct {
	page
	App                           appRow
	RepoURL, TargetRevision, Path string
	Automated                     string
	Conditions                    []condView
	Drifted                       []string
	Diff                          string
	Objects                       []*objectNode
	ObjectNotes                   []string
	History                       []historyView
	Events                        []eventView
	EventsNote                    string
	CanSync                       bool
	CSRF                          string
	// SyncRequest is "pending" while a request made here waits for the
	// controller, "handled" once it reported it, else "".
	SyncRequest string
	// Approval is status.approval (what waits, what was approved last),
	// nil when the Application has none.
	Approval *approvalView
}

func rowOf(app *kv1.Application, now time.Time) appRow {
	r := appRow{
		Namespace: app.Namespace, Name: app.Name,
		Sync: kv1.OrUnknown(app.Status.Sync.Status), Health: kv1.OrUnknown(app.Status.Health.Status),
		Revision: kv1.ShortSHA(app.Status.LastAppliedRevision),
	}
	r.Ready, r.Message, r.Failing = app.ReadyState()
	r.Held = app.Held(now)
	r.RevisionURL = forge.CommitURL(forge.ProviderOf(app), app.Spec.Source.RepoURL, app.Status.LastAppliedRevision)
	if op := app.Status.Operation; op != nil {
		r.Operation = fmt.Sprintf("%s wave %d", op.Phase, op.Wave)
	}
	if len(app.Status.History) > 0 {
		h := app.Status.History[0]
		r.Author = h.Author
		r.LastSync = Age(now, h.FinishedAt.Time)
	}
	return r
}

// matches reports whether r passes the list's filter.
func (r appRow) matches(namespace, status string) bool {
	if namespace != "" && r.Namespace != namespace {
		return false
	}
	return status == "" || r.Sync == status || r.Health == status || (status == statusFailing && r.Failing)
}

// statusFailing is the list's count and filter of Applications whose last
// pass failed (ReadyState).
const statusFailing = "Failing"

// counts are the figures at the top of the list, over every row shown
// before filtering.
func counts(rows []appRow) []count {
	out := []count{{Label: "Applications", N: len(rows)}}
	for _, s := range []string{kv1.SyncStatusSynced, kv1.SyncStatusOutOfSync, kv1.HealthHealthy, kv1.HealthProgressing, kv1.HealthDegraded} {
		n := 0
		for _, r := range rows {
			if r.Sync == s || r.Health == s {
				n++
			}
		}
		out = append(out, count{Label: s, N: n})
	}
	failing := 0
	for _, r := range rows {
		if r.Failing {
			failing++
		}
	}
	return append(out, count{Label: statusFailing, N: failing})
}

func conditionsOf(app *kv1.Application, now time.Time) []condView {
	out := make([]condView, 0, len(app.Status.Conditions))
	for _, c := range app.Status.Conditions {
		out = append(out, condView{Type: c.Type, Status: string(c.Status), Reason: c.Reason, Message: c.Message, Age: Age(now, c.LastTransitionTime.Time),
			Class: conditionClass(c)})
	}
	return out
}

func historyOf(app *kv1.Application) []historyView {
	provider := forge.ProviderOf(app)
	sa := app.Spec.ServiceAccountName
	if sa == "" {
		sa = kv1.DefaultServiceAccountName
	}
	out := make([]historyView, 0, len(app.Status.History))
	for _, h := range app.Status.History {
		v := historyView{
			Revision: kv1.ShortSHA(h.Revision), RevisionURL: forge.CommitURL(provider, app.Spec.Source.RepoURL, h.Revision),
			Result: h.Result, Trigger: h.Trigger, Author: h.Author, Committer: h.Committer, Signer: h.Signer,
			Finished: timestamp(h.FinishedAt), Changes: h.Changes, Message: h.Message, Error: h.Error, Hooks: h.Hooks,
		}
		if !h.StartedAt.IsZero() && !h.FinishedAt.IsZero() {
			v.Duration = h.FinishedAt.Sub(h.StartedAt.Time).Round(100 * time.Millisecond).String()
		}
		v.Audit = []field{
			{"time", timestamp(h.FinishedAt)}, {"app", app.Name}, {"namespace", app.Namespace}, {"revision", h.Revision},
			{"author", h.Author}, {"committer", h.Committer}, {"signer", h.Signer}, {"message", h.Message},
			{"trigger", h.Trigger}, {"serviceAccount", sa}, {"result", h.Result}, {"changes", h.Changes}, {"error", h.Error},
			{"approvers", strings.Join(h.Approvers, ", ")}, {"pullRequest", h.PullRequest}, {"approvedBy", h.ApprovedBy},
			{"approvalDigest", h.ApprovalDigest}, {"windowOverride", h.WindowOverride}, {"renderedDigest", h.RenderedDigest}, {"dryRun", h.DryRun},
		}
		v.Audit = slices.DeleteFunc(v.Audit, func(f field) bool { return f.Value == "" })
		out = append(out, v)
	}
	return out
}

// eventsOf returns the Application's Events, newest first.
func eventsOf(list []corev1.Event, now time.Time) []eventView {
	slices.SortFunc(list, func(a, b corev1.Event) int { return eventTime(b).Compare(eventTime(a)) })
	out := make([]eventView, 0, len(list))
	for _, e := range list {
		n := e.Count
		if e.Series != nil {
			n = e.Series.Count
		}
		out = append(out, eventView{Type: e.Type, Reason: e.Reason, Message: e.Message, Age: Age(now, eventTime(e)), Count: max(n, 1)})
	}
	return out
}

func eventTime(e corev1.Event) time.Time {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}

func automatedOf(app *kv1.Application) string {
	if !app.Automated() {
		return "manual (sync on demand)"
	}
	var opts []string
	if app.Prunes() {
		opts = append(opts, "prune")
	}
	if app.SelfHeals() {
		opts = append(opts, "selfHeal")
	}
	if len(opts) == 0 {
		return "automated"
	}
	return "automated (" + strings.Join(opts, ", ") + ")"
}

func timestamp(t metav1.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// Age is the time from t to now as kubectl's AGE column prints it (45s,
// 12m, 5h30m, 2d2h, 30d: apimachinery's duration.HumanDuration); "" for a
// time not set, "0s" for one in the future. The dashboard and `keyless get`
// print ages with it.
func Age(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return duration.HumanDuration(max(now.Sub(t), 0))
}

// conditionClass: Ready True is good news, Reconciling True is work in
// progress, Stalled True and Ready False are bad.
func conditionClass(c metav1.Condition) string {
	good := c.Status == metav1.ConditionTrue
	switch c.Type {
	case kv1.StalledCondition:
		good = !good
	case kv1.ReconcilingCondition:
		if good {
			return "warn"
		}
		return "ok"
	}
	if good {
		return "ok"
	}
	return "bad"
}

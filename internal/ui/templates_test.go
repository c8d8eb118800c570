package ui

import (
	"bytes"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

// payloads are what a commit message, an author or an annotation may hold.
var payloads = []string{`<script>alert(1)</script>`, `"><img src=x onerror=alert(2)>`}

// TestPagesEscapeEverythingFromTheClusterAndGit renders both pages with the
// payloads in every field that comes from Git or the cluster.
func TestPagesEscapeEverythingFromTheClusterAndGit(t *testing.T) {
	now := time.Now()
	for _, p := range payloads {
		app := &kv1.Application{
			ObjectMeta: metav1.ObjectMeta{Namespace: "myapp", Name: "web"},
			Spec:       kv1.ApplicationSpec{Source: kv1.ApplicationSource{RepoURL: "https://github.com/o/r", Path: p}},
			Status: kv1.ApplicationStatus{
				Sync:                kv1.SyncStatus{Status: kv1.SyncStatusOutOfSync, Drifted: []string{p}, Diff: p},
				LastAppliedRevision: "0123456789abcdef0123456789abcdef01234567",
				Conditions:          []metav1.Condition{{Type: kv1.ReadyCondition, Status: metav1.ConditionFalse, Reason: "OutOfSync", Message: p}},
				History: []kv1.SyncRecord{{Revision: "0123456789abcdef0123456789abcdef01234567", Author: p, Committer: p, Message: p,
					Approvers: []string{p}, PullRequest: p, WindowOverride: p,
					Result: kv1.SyncResultSucceeded, Changes: p, Hooks: []kv1.HookRecord{{Kind: "Job", Name: "migrate", Phase: "PreSync", Result: "Succeeded", Message: p}}}},
			},
		}
		pages := map[string]any{
			"app.html": appPage{page: page{Title: p, Viewer: p}, App: rowOf(app, now), RepoURL: p, TargetRevision: p, Path: p,
				Conditions: conditionsOf(app, now), Drifted: app.Status.Sync.Drifted, Diff: p, History: historyOf(app),
				Objects: []*objectNode{{Kind: "Deployment", Name: p, Status: "Current", Message: p, Annotations: annotationsOf(map[string]string{p: p}), Children: []*objectNode{{Kind: "Pod", Name: p, Note: p}}}},
				Events:  []eventView{{Type: "Normal", Reason: p, Message: p}}, CanSync: true, CSRF: "tok"},
			"list.html": listPage{page: page{Title: "Applications", Viewer: p}, Rows: []appRow{rowOf(app, now)}, Notes: []string{p},
				Namespaces: []string{p}, FilterNamespace: p, Statuses: statusFilters},
			"error.html": errorPage{page: page{Title: "Not Found"}, Message: p},
		}
		for name, data := range pages {
			var b bytes.Buffer
			if err := templates.ExecuteTemplate(&b, name, data); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			out := b.String()
			if strings.Contains(out, p) {
				t.Errorf("%s carries the payload %q unescaped", name, p)
			}
			if strings.Contains(out, "<img") || strings.Count(out, "<script") != 1 {
				t.Errorf("%s: a payload became markup", name)
			}
		}
	}
}

func TestListRowsAndCounts(t *testing.T) {
	now := time.Now()
	mk := func(ns, name, sync, health string) appRow {
		return rowOf(&kv1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Status: kv1.ApplicationStatus{Sync: kv1.SyncStatus{Status: sync}, Health: kv1.HealthStatus{Status: health}}}, now)
	}
	rows := []appRow{mk("a", "x", "Synced", "Healthy"), mk("b", "y", "OutOfSync", "Degraded"), mk("b", "z", "", "")}
	got := counts(rows)
	want := map[string]int{"Applications": 3, "Synced": 1, "OutOfSync": 1, "Healthy": 1, "Degraded": 1, "Progressing": 0}
	for _, c := range got {
		if want[c.Label] != c.N {
			t.Errorf("%s = %d, want %d", c.Label, c.N, want[c.Label])
		}
	}
	if rows[2].Sync != kv1.SyncStatusUnknown || !rows[2].matches("b", "Unknown") || rows[0].matches("b", "") || !rows[1].matches("", "Degraded") {
		t.Error("filter")
	}
}

// TestFailingApplicationShows: an Application failing before any sync
// (empty Sync and Health) is not a grey Unknown row: its Ready badge is red
// with the reason, the message is shown, it is counted and filtered as
// Failing; one rolling out is not.
func TestFailingApplicationShows(t *testing.T) {
	now := time.Now()
	withReady := func(name string, st metav1.ConditionStatus, reason, msg string) *kv1.Application {
		return &kv1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name},
			Status: kv1.ApplicationStatus{Conditions: []metav1.Condition{{Type: kv1.ReadyCondition, Status: st, Reason: reason, Message: msg}}}}
	}
	failing := rowOf(withReady("web", metav1.ConditionFalse, kv1.ReasonRenderFailed, "rendering deploy at 0123456: deploy/web.yaml:3: mapping values are not allowed"), now)
	rolling := rowOf(withReady("api", metav1.ConditionFalse, kv1.ReasonProgressing, "Deployment/api: 1 of 2 updated"), now)
	ready := rowOf(withReady("db", metav1.ConditionTrue, kv1.ReasonSucceeded, "applied revision 9f8f0a7"), now)
	if !failing.Failing || failing.Ready != kv1.ReasonRenderFailed || failing.ReadyClass() != "bad" || rolling.Failing || rolling.ReadyClass() != "warn" || ready.ReadyClass() != "ok" {
		t.Fatalf("rows: failing %+v (%s), rolling %+v (%s), ready %s", failing, failing.ReadyClass(), rolling, rolling.ReadyClass(), ready.ReadyClass())
	}
	rows := []appRow{failing, rolling, ready}
	for _, c := range counts(rows) {
		if c.Label == "Failing" && c.N != 1 {
			t.Errorf("Failing = %d, want 1", c.N)
		}
	}
	if !failing.matches("", "Failing") || rolling.matches("", "Failing") || ready.matches("", "Failing") {
		t.Error("the Failing filter")
	}
	var b strings.Builder
	if err := templates.ExecuteTemplate(&b, "list.html", listPage{page: page{Title: "Applications"}, Rows: rows, Counts: counts(rows), Statuses: statusFilters}); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	for _, want := range []string{`<span class="badge bad" title="rendering deploy at 0123456: deploy/web.yaml:3: mapping values are not allowed">RenderFailed</span>`,
		`<div class="msg">rendering deploy at 0123456: deploy/web.yaml:3: mapping values are not allowed</div>`,
		`<span class="n">1</span> Failing`, `<option value="Failing">Failing</option>`} {
		if !strings.Contains(html, want) {
			t.Errorf("the list lacks %s", want)
		}
	}
}

// TestHeldApplicationShows: a closed sync window shows under the
// Application's sync, in the list and on its page.
func TestHeldApplicationShows(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	app := &kv1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
		Status: kv1.ApplicationStatus{SyncWindow: &kv1.SyncWindowStatus{Window: "deny 0 22 * * 5 for 60h (Europe/Stockholm, from the cluster admin)", Until: metav1.NewTime(now.Add(time.Hour))}}}
	row := rowOf(app, now)
	want := `<div class="msg held">window closed until 2026-12-07 13:00Z: deny 0 22 * * 5 for 60h (Europe/Stockholm, from the cluster admin)</div>`
	var b strings.Builder
	if err := templates.ExecuteTemplate(&b, "list.html", listPage{page: page{Title: "Applications"}, Rows: []appRow{row}, Counts: counts([]appRow{row}), Statuses: statusFilters}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), want) {
		t.Errorf("the list lacks %s", want)
	}
	if rowOf(&kv1.Application{}, now).Held != "" {
		t.Error("an Application nothing holds shows something held")
	}
}

// TestHistoryShowsWhoApproved: a sync's audit record on the Application
// page names the forge's approvers and the pull request, the rendered
// digest and the dry run.
func TestHistoryShowsWhoApproved(t *testing.T) {
	app := &kv1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: "myapp", Name: "web"},
		Status: kv1.ApplicationStatus{History: []kv1.SyncRecord{{Revision: "0123456789abcdef0123456789abcdef01234567", Result: kv1.SyncResultSucceeded,
			Approvers: []string{"bob", "carol"}, PullRequest: "https://gitea.example/shop/web/pulls/7", RenderedDigest: "sha256:abc", DryRun: kv1.DryRunPassed}}}}
	var b bytes.Buffer
	if err := templates.ExecuteTemplate(&b, "app.html", appPage{App: rowOf(app, time.Now()), History: historyOf(app)}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<dt>approvers</dt><dd>bob, carol</dd>", "<dd>https://gitea.example/shop/web/pulls/7</dd>", "<dt>dryRun</dt><dd>Passed</dd>", "sha256:abc"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}

package v1alpha1

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestAccessors(t *testing.T) {
	for name, tc := range map[string]struct {
		spec                                    ApplicationSpec
		automated, prune, selfHeal, allowsEmpty bool
		interval                                time.Duration
	}{
		"manual":               {spec: ApplicationSpec{}, interval: time.Minute},
		"manual with a policy": {spec: ApplicationSpec{SyncPolicy: &SyncPolicy{}}, interval: time.Minute},
		"automated, all on": {spec: ApplicationSpec{SyncPolicy: &SyncPolicy{Automated: &AutomatedSyncPolicy{Prune: true, SelfHeal: true, AllowEmpty: true}},
			Interval: &metav1.Duration{Duration: 2 * time.Minute}}, automated: true, prune: true, selfHeal: true, allowsEmpty: true, interval: 2 * time.Minute},
		"automated, interval below the minimum": {spec: ApplicationSpec{SyncPolicy: &SyncPolicy{Automated: &AutomatedSyncPolicy{}},
			Interval: &metav1.Duration{Duration: time.Second}}, automated: true, interval: MinInterval},
	} {
		a := &Application{Spec: tc.spec}
		if a.Automated() != tc.automated || a.Prunes() != tc.prune || a.SelfHeals() != tc.selfHeal || a.AllowsEmpty() != tc.allowsEmpty || a.IntervalOr(time.Minute) != tc.interval {
			t.Errorf("%s: automated %v prune %v selfHeal %v allowEmpty %v interval %s", name, a.Automated(), a.Prunes(), a.SelfHeals(), a.AllowsEmpty(), a.IntervalOr(time.Minute))
		}
	}
}

func TestShortSHAOfEachKindOfRevision(t *testing.T) {
	sha := "0123456789abcdef0123456789abcdef01234567"
	for in, want := range map[string]string{
		sha:                                      "0123456",
		"1.2.3@sha256:" + sha + sha[:24]:         "1.2.3@0123456",
		"1.2.3@sha256:" + sha + ",values=" + sha: "1.2.3@0123456,values=0123456",
		"abc":                                    "abc",
	} {
		if got := ShortSHA(in); got != want {
			t.Errorf("ShortSHA(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUseRenderedSource(t *testing.T) {
	chart := ApplicationSource{RepoURL: "https://charts.example.com", Chart: "web", Helm: &HelmSource{ValueFiles: []string{"$values/prod.yaml"}}}
	values := ApplicationSource{RepoURL: "https://git.example.com/env.git", Ref: "values"}
	s := ApplicationSpec{Sources: []ApplicationSource{values, chart}}
	if err := s.UseRenderedSource(); err != nil || s.Source.Chart != "web" || len(s.RefSources()) != 1 {
		t.Fatalf("UseRenderedSource: %v, source %+v, refs %v", err, s.Source, s.RefSources())
	}
	for name, srcs := range map[string][]ApplicationSource{"two rendered": {chart, chart}, "none rendered": {values}} {
		s := ApplicationSpec{Sources: srcs}
		if err := s.UseRenderedSource(); err == nil || !strings.Contains(err.Error(), "spec.sources") {
			t.Errorf("%s: err = %v, want one naming spec.sources", name, err)
		}
	}
}

func TestReadyState(t *testing.T) {
	with := func(st metav1.ConditionStatus, reason, msg string) *Application {
		return &Application{Status: ApplicationStatus{Conditions: []metav1.Condition{{Type: ReadyCondition, Status: st, Reason: reason, Message: msg}}}}
	}
	for _, tc := range []struct {
		app         *Application
		state       string
		failing     bool
		wantMessage string
	}{
		{&Application{}, "Unknown", false, ""},
		{with(metav1.ConditionTrue, ReasonSucceeded, "applied revision abc"), "Ready", false, "applied revision abc"},
		{with(metav1.ConditionFalse, ReasonProgressing, "Deployment/web: 1/2"), "Progressing", false, "Deployment/web: 1/2"},
		{with(metav1.ConditionFalse, ReasonSuspended, "suspended"), "Suspended", false, "suspended"},
		{with(metav1.ConditionFalse, ReasonOutOfSync, "out of sync"), "OutOfSync", false, "out of sync"},
		{with(metav1.ConditionFalse, HealthDegraded, "Deployment/web failed"), "Degraded", false, "Deployment/web failed"},
		{with(metav1.ConditionFalse, ReasonRenderFailed, "deploy/web.yaml:3: bad"), "RenderFailed", true, "deploy/web.yaml:3: bad"},
		{with(metav1.ConditionFalse, ReasonGitFailed, "ls-remote: refused"), "GitOperationFailed", true, "ls-remote: refused"},
		{with(metav1.ConditionFalse, ReasonInvalidSpec, "spec.interval"), "InvalidSpec", true, "spec.interval"},
		{with(metav1.ConditionFalse, "ShardRefused", "labelled"), "ShardRefused", true, "labelled"},
		{with(metav1.ConditionUnknown, "", ""), "Unknown", false, ""},
		{with(metav1.ConditionFalse, ReasonAwaitingApproval, "awaiting approval"), ReasonAwaitingApproval, false, "awaiting approval"},
	} {
		state, msg, failing := tc.app.ReadyState()
		if state != tc.state || failing != tc.failing || msg != tc.wantMessage {
			t.Errorf("ReadyState() = %q, %q, %v; want %q, %q, %v", state, msg, failing, tc.state, tc.wantMessage, tc.failing)
		}
	}
}

func TestRetryPolicy(t *testing.T) {
	if _, _, ok := (&Application{}).RetryPolicy(); ok {
		t.Fatal("no syncPolicy.retry has a retry policy")
	}
	app := &Application{Spec: ApplicationSpec{SyncPolicy: &SyncPolicy{Retry: &RetryStrategy{}}}}
	limit, backoff, ok := app.RetryPolicy()
	if !ok || limit != DefaultRetryLimit || backoff(1) != 5*time.Second || backoff(2) != 10*time.Second || backoff(10) != 3*time.Minute {
		t.Fatalf("defaults: limit %d, %s %s %s", limit, backoff(1), backoff(2), backoff(10))
	}
	three, neg := int64(3), int64(-1)
	app.Spec.SyncPolicy.Retry = &RetryStrategy{Limit: &three, Backoff: &RetryBackoff{Duration: "1s", Factor: &three, MaxDuration: "20s"}}
	limit, backoff, _ = app.RetryPolicy()
	if limit != 3 || backoff(1) != time.Second || backoff(2) != 3*time.Second || backoff(3) != 9*time.Second || backoff(4) != 20*time.Second {
		t.Fatalf("limit %d, %s %s %s %s", limit, backoff(1), backoff(2), backoff(3), backoff(4))
	}
	app.Spec.SyncPolicy.Retry.Limit = &neg
	if limit, _, _ = app.RetryPolicy(); limit >= 0 {
		t.Fatalf("a negative limit = %d", limit)
	}
}

func TestHeld(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	window := &SyncWindowStatus{Window: "deny 0 22 * * 5 for 60h (UTC)", Until: metav1.NewTime(now.Add(2 * time.Hour))}
	pause := `{"until":"2026-12-07T12:30:00Z","by":"alice","reason":"INC-123"}`
	for _, tc := range []struct {
		name   string
		window *SyncWindowStatus
		pause  string
		want   string
	}{
		{name: "nothing"},
		{name: "window", window: window, want: "window closed until 2026-12-07 14:00Z: deny 0 22 * * 5 for 60h (UTC)"},
		{name: "window past", window: &SyncWindowStatus{Window: "w", Until: metav1.NewTime(now.Add(-time.Minute))}},
		{name: "pause", pause: pause, want: "self-heal paused until 2026-12-07 12:30Z by alice: INC-123"},
		{name: "both", window: window, pause: pause, want: "window closed until 2026-12-07 14:00Z: deny 0 22 * * 5 for 60h (UTC); self-heal paused until 2026-12-07 12:30Z by alice: INC-123"},
		{name: "pause expired", pause: `{"until":"2026-12-07T11:00:00Z","by":"alice","reason":"INC-1"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &Application{Status: ApplicationStatus{SyncWindow: tc.window}}
			if tc.pause != "" {
				a.Annotations = map[string]string{PauseAnnotation: tc.pause}
			}
			if got := a.Held(now); got != tc.want {
				t.Errorf("Held = %q, want %q", got, tc.want)
			}
		})
	}
}

package controller_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

// TestChartFromAHelmRepository: spec.source.chart deploys a chart from a
// Helm repository; the version in range and its digest are the revision
// (status and history); a new version in range is a new revision; a
// chart whose bytes do not match the index's digest is refused naming both
// digests, and the last good version keeps running.
func TestChartFromAHelmRepository(t *testing.T) {
	e, _ := seedApp(t, time.Hour)
	ctx := t.Context()
	charts := helmRepository(t, "1.0.0", "2.0.0")
	app := &kv1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: "lib", Namespace: appNS},
		Spec: kv1.ApplicationSpec{
			Source: kv1.ApplicationSource{RepoURL: charts.URL, Chart: "lib", TargetRevision: "1.x",
				Helm: &kv1.HelmSource{Parameters: []kv1.HelmParameter{{Name: "greeting", Value: "hello"}}}},
			SyncPolicy: &kv1.SyncPolicy{Automated: &kv1.AutomatedSyncPolicy{Prune: true}},
			Interval:   &metav1.Duration{Duration: time.Hour},
		},
	}
	if err := e.admin.Create(ctx, app); err != nil {
		t.Fatal(err)
	}
	got := e.waitApp("lib", "Ready at 1.0.0", 60*time.Second, func(a *kv1.Application) bool {
		return ready(a) && strings.HasPrefix(a.Status.LastAppliedRevision, "1.0.0@sha256:")
	})
	if h := got.Status.History; len(h) == 0 || h[0].Revision != got.Status.LastAppliedRevision || !strings.Contains(h[0].Message, "chart lib 1.0.0") {
		t.Errorf("history = %+v, want the chart's version@digest and a message naming it", h)
	}
	e.waitLib("1.0.0", "hello")

	// 1.1.0 is published, but its archive is not what the index says. (A
	// second later: the index is revalidated with If-Modified-Since, whose
	// granularity is a second.)
	time.Sleep(1100 * time.Millisecond)
	charts.publish("1.1.0")
	tgz := filepath.Join(charts.dir, "lib-1.1.0.tgz")
	data, err := os.ReadFile(tgz)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tgz, append(data, 0), 0o644); err != nil {
		t.Fatal(err)
	}
	e.requestSyncOf("lib", "tampered")
	failed := e.waitApp("lib", "refusing the tampered chart", 30*time.Second, func(a *kv1.Application) bool {
		c := readyCondition(a)
		return c != nil && c.Reason == kv1.ReasonChartFailed && strings.Contains(c.Message, "sha256:")
	})
	if msg := readyCondition(failed).Message; strings.Count(msg, "sha256:") < 2 {
		t.Errorf("refusal %q does not name both digests", msg)
	}
	e.waitLib("1.0.0", "hello") // the last good version runs

	if err := os.WriteFile(tgz, data, 0o644); err != nil {
		t.Fatal(err)
	}
	e.requestSyncOf("lib", "repaired")
	e.waitApp("lib", "Ready at 1.1.0", 30*time.Second, func(a *kv1.Application) bool {
		return ready(a) && strings.HasPrefix(a.Status.LastAppliedRevision, "1.1.0@sha256:")
	})
	e.waitLib("1.1.0", "hello")

	// The chart cache keeps what the revisions name: 1.0.0 goes once
	// unused for a collection interval (2 s here), archive and unpacked.
	waitFor(t, 30*time.Second, "the 1.0.0 chart collected", func() (bool, string) {
		archives, _ := filepath.Glob(filepath.Join(e.cacheDir, "helm", "charts", "sha256-*.tgz"))
		unpacked, _ := filepath.Glob(filepath.Join(e.cacheDir, "helm", "expanded", "*"))
		return len(archives) == 1 && len(unpacked) == 1, fmt.Sprintf("archives %v, unpacked %v", archives, unpacked)
	})
}

// waitLib waits until chart lib's ConfigMap says version and greeting.
func (e *env) waitLib(version, greeting string) {
	e.t.Helper()
	waitFor(e.t, 30*time.Second, "ConfigMap lib-lib at "+version, func() (bool, string) {
		cm := &corev1.ConfigMap{}
		if err := e.admin.Get(e.t.Context(), types.NamespacedName{Namespace: appNS, Name: "lib-lib"}, cm); err != nil {
			return false, err.Error()
		}
		return cm.Data["version"] == version && cm.Data["greeting"] == greeting, "data " + strings.TrimSpace(cm.Data["version"]+" "+cm.Data["greeting"])
	})
}

// requestSyncOf annotates Application name as `keyless sync` does.
func (e *env) requestSyncOf(name, value string) {
	e.t.Helper()
	app := e.app(name)
	patch := client.MergeFrom(app.DeepCopy())
	if app.Annotations == nil {
		app.Annotations = map[string]string{}
	}
	app.Annotations[kv1.SyncRequestedAnnotation] = value
	if err := e.admin.Patch(e.t.Context(), app, patch); err != nil {
		e.t.Fatal(err)
	}
}

func readyCondition(app *kv1.Application) *metav1.Condition {
	return apimeta.FindStatusCondition(app.Status.Conditions, kv1.ReadyCondition)
}

// TestChartWithValuesFromGit: Argo CD's multi-source form — a chart from a
// Helm repository with values from Git ($values/path): a commit to the
// values is a new revision, and history names both revisions.
func TestChartWithValuesFromGit(t *testing.T) {
	e, _ := seedApp(t, time.Hour)
	ctx := t.Context()
	charts := helmRepository(t, "1.0.0")
	first := e.push(map[string]string{"envs/prod/lib.yaml": "greeting: from git\n"}, nil, "prod values")
	time.Sleep(1100 * time.Millisecond) // past the seed's last ls-remote (gitsource.Options.LsRemoteTTL)
	app := &kv1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: "lib", Namespace: appNS},
		Spec: kv1.ApplicationSpec{
			Sources: []kv1.ApplicationSource{
				{RepoURL: charts.URL, Chart: "lib", TargetRevision: "1.0.0", Helm: &kv1.HelmSource{ValueFiles: []string{"$values/envs/prod/lib.yaml"}}},
				{RepoURL: e.git.RepoURL(repoName), TargetRevision: "main", Ref: "values", SecretRef: &kv1.LocalObjectReference{Name: "myapp-git"}},
			},
			SyncPolicy: &kv1.SyncPolicy{Automated: &kv1.AutomatedSyncPolicy{Prune: true}},
			Interval:   &metav1.Duration{Duration: time.Hour},
		},
	}
	if err := e.admin.Create(ctx, app); err != nil {
		t.Fatal(err)
	}
	got := e.waitApp("lib", "Ready", 60*time.Second, ready)
	if rev := got.Status.LastAppliedRevision; !strings.HasPrefix(rev, "1.0.0@sha256:") || !strings.HasSuffix(rev, ",values="+first) {
		t.Fatalf("revision %q, want the chart's version@digest and values=%s", rev, first)
	}
	e.waitLib("1.0.0", "from git")

	second := e.push(map[string]string{"envs/prod/lib.yaml": "greeting: changed in git\n"}, nil, "new greeting")
	e.requestSyncOf("lib", "values changed")
	got = e.waitApp("lib", "synced at the values commit", 30*time.Second, func(a *kv1.Application) bool {
		return ready(a) && strings.HasSuffix(a.Status.LastAppliedRevision, ",values="+second)
	})
	e.waitLib("1.0.0", "changed in git")
	if h := got.Status.History; len(h) < 2 || h[0].Author == "" || !strings.Contains(h[0].Message, "new greeting") {
		t.Errorf("history[0] = %+v, want the values commit's author and message", h[0])
	}
}

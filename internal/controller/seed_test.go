package controller_test

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

// seedApp is the fixture the Application tests share, the first seed
// document's GitOps answer: a cluster with keyless's namespaced install, a
// controller running as its own ServiceAccount (only its namespaced Roles),
// the application's first commit, and the seed's Argo CD Application imported
// with `keyless import argocd`, created, and Ready. interval is the
// Application's; the controller's default is an hour, so anything faster
// than interval is a webhook's or a watch's doing. It returns the env and the
// first commit.
func seedApp(t *testing.T, interval time.Duration) (*env, string) {
	t.Helper()
	e := newEnv(t)
	e.startController(time.Hour)
	first := e.push(manifests("registry.example.com/web:1.0", "hello"), nil, "initial deploy")
	seed := strings.NewReplacer(
		"name: myapp\n  namespace: argocd", "name: web\n  namespace: argocd",
		"https://gitlab.example.com/myorg/myapp", e.git.RepoURL(repoName),
		"path: helm-charts/myapp", "path: deploy",
	).Replace(readFile(t, repoRoot(t)+"/internal/argocd/testdata/seed.yaml"))
	code, out, errOut := e.keyless(seed, "import", "argocd", "-")
	if code != 0 || errOut != "" {
		t.Fatalf("import: exit %d, stderr %q", code, errOut)
	}
	app := &kv1.Application{}
	if err := yaml.UnmarshalStrict([]byte(out), app); err != nil {
		t.Fatalf("import output %q: %v", out, err)
	}
	// What Argo CD keeps elsewhere: the repository credential; and the interval.
	app.Spec.Source.SecretRef = &kv1.LocalObjectReference{Name: "myapp-git"}
	app.Spec.Interval = &metav1.Duration{Duration: interval}
	if err := e.admin.Create(t.Context(), app); err != nil {
		t.Fatal(err)
	}
	got := e.waitApp("web", "Ready", 60*time.Second, ready)
	if got.Status.LastAppliedRevision != first {
		t.Fatalf("first sync applied %s, want %s", got.Status.LastAppliedRevision, first)
	}
	return e, first
}

// TestImportedArgoCDApplicationSyncs: the imported Application syncs to
// Synced/Healthy with who made the commit recorded in status, the CLI and the
// audit line, and every write made as the namespace's deployer.
func TestImportedArgoCDApplicationSyncs(t *testing.T) {
	e, first := seedApp(t, time.Hour)
	got := e.app("web")
	if got.Status.Sync.Status != kv1.SyncStatusSynced || got.Status.Health.Status != kv1.HealthHealthy {
		t.Fatalf("status after first sync: %+v", got.Status)
	}
	if h := got.Status.History; len(h) == 0 || h[0].Author != "Dana Developer <dana@example.com>" || h[0].Committer != "CI <ci@example.com>" || h[0].Result != kv1.SyncResultSucceeded || h[0].Message != "initial deploy" {
		t.Fatalf("history: %+v", got.Status.History)
	}
	if len(got.Status.Inventory) != 3 {
		t.Fatalf("inventory: %+v", got.Status.Inventory)
	}
	recs := e.audit.records(t)
	if len(recs) == 0 || recs[0].App != "web" || recs[0].Revision != first || recs[0].Author != "Dana Developer <dana@example.com>" || len(recs[0].Changes) != 3 || recs[0].ServiceAccount != "keyless-deployer" {
		t.Fatalf("audit records: %+v", recs)
	}
	// Every write to the app namespace was made as the deployer, not the controller.
	for _, w := range e.cluster.Writes(t, appNS) {
		managed := map[string]bool{"configmaps": true, "deployments": true, "services": true}
		if managed[w.ObjectRef.Resource] && !strings.Contains(w.RequestURI, "/status") && (w.ObjectRef.Name == "settings" || w.ObjectRef.Name == "web") {
			if w.ImpersonatedUser == nil || w.ImpersonatedUser.Username != deployerU || w.User.Username != controllerU {
				t.Fatalf("write %s %s by %s (impersonating %v), want the controller impersonating the deployer", w.Verb, w.RequestURI, w.User.Username, w.ImpersonatedUser)
			}
		}
	}

	code, out, errOut := e.keyless("", "get", "apps", "-n", appNS)
	if code != 0 || !strings.Contains(out, "web") || !strings.Contains(out, "Synced") || !strings.Contains(out, "Healthy") || !strings.Contains(out, first[:7]) || !strings.Contains(out, "Dana Developer") {
		t.Fatalf("keyless get apps: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = e.keyless("", "history", "web", "-n", appNS)
	if code != 0 || !strings.Contains(out, first[:7]) || !strings.Contains(out, "initial deploy") || !strings.Contains(out, "CI <ci@example.com>") {
		t.Fatalf("keyless history: exit %d\n%s%s", code, out, errOut)
	}

	t.Log("keyless sync asks the controller for a sync and reports it")
	code, out, errOut = e.keyless("", "sync", "web", "-n", appNS, "--timeout", "30s")
	if code != 0 || !strings.Contains(out, "Succeeded") {
		t.Fatalf("keyless sync: exit %d\n%s%s", code, out, errOut)
	}
}

package ui_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/controller"
	"github.com/keyless-cd/keyless/internal/gitserver"
	"github.com/keyless-cd/keyless/internal/localcluster/clustertest"
	"github.com/keyless-cd/keyless/internal/ui"
)

// appRows lists the rows of the Applications table as "namespace/name".
const appRows = `Array.from(document.querySelectorAll('tr[data-app]'), r => r.dataset.app)`

// liveDeadline is how soon after a `kubectl edit` the Application's page
// must show it, without a reload (the figure).
const liveDeadline = 2 * time.Second

// TestBrowserDashboard drives `keyless ui` in headless Chromium against a
// real cluster, Git server and controller, as three identities: alice reads
// team-a, bob reads and may patch team-b's Applications, the admin reads all.
func TestBrowserDashboard(t *testing.T) {
	e := newBrowserEnv(t)
	ctx := t.Context()

	// team-a's commit message and ConfigMap annotations carry markup.
	annotations := fmt.Sprintf("    keyless.dev/note-script: %q\n    keyless.dev/note-img: %q", xss[0], xss[1])
	for _, c := range []struct {
		repo    string
		commits gitserver.Commit
	}{
		{"team-a/deploy", gitserver.Commit{Files: map[string]string{"web/app.yaml": manifests("web", 1, annotations)}, Message: "web: roll out 1.4.2 " + xss[0] + " " + xss[1]}},
		{"team-b/deploy", gitserver.Commit{Files: map[string]string{
			"api/app.yaml":    manifests("api", 2, "    owner: team-b"),
			"worker/app.yaml": manifests("worker", 1, "    owner: team-b"),
		}, Message: "api, worker: roll out 1.4.2"}},
	} {
		if err := e.git.CreateRepo(ctx, c.repo, "main"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.git.Commit(ctx, c.repo, c.commits); err != nil {
			t.Fatal(err)
		}
	}
	automated := func(selfHeal bool) *kv1.SyncPolicy {
		return &kv1.SyncPolicy{Automated: &kv1.AutomatedSyncPolicy{Prune: true, SelfHeal: selfHeal}}
	}
	for _, a := range []struct {
		ns, name, repo string
		policy         *kv1.SyncPolicy
	}{
		{teamA, "web", "team-a/deploy", automated(false)},
		{teamB, "api", "team-b/deploy", nil}, // manual: synced with the button
		{teamB, "worker", "team-b/deploy", automated(true)},
	} {
		app := &kv1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: a.name}, Spec: kv1.ApplicationSpec{
			Source:     kv1.ApplicationSource{RepoURL: e.git.RepoURL(a.repo), TargetRevision: "main", Path: a.name, SecretRef: &kv1.LocalObjectReference{Name: "git"}},
			SyncPolicy: a.policy,
		}}
		if err := e.admin.Create(ctx, app); err != nil {
			t.Fatal(err)
		}
	}
	e.startController()
	e.waitApp(t, teamA, "web", func(a *kv1.Application) bool { return a.Status.Sync.Status == kv1.SyncStatusSynced })
	e.waitApp(t, teamB, "worker", func(a *kv1.Application) bool { return a.Status.Sync.Status == kv1.SyncStatusSynced })
	e.waitApp(t, teamB, "api", func(a *kv1.Application) bool { return a.Status.Sync.Status == kv1.SyncStatusOutOfSync })

	e.grant(teamA, "alice", false)
	e.grant(teamB, "bob", true)
	both := []string{teamA, teamB}
	alice, _ := serveUI(t, e.identity(teamA, "alice"), ui.Options{Namespaces: both})
	bob, _ := serveUI(t, e.identity(teamB, "bob"), ui.Options{Namespaces: both})
	admin, stopAdmin := serveUI(t, e.cluster.Config, ui.Options{AllNamespaces: true})
	b := browser(t)

	t.Run("each viewer lists what their RBAC allows", func(t *testing.T) {
		for _, v := range []struct {
			url, who  string
			want      []string
			forbidden string
		}{
			{alice, "system:serviceaccount:team-a:alice", []string{"team-a/web"}, teamB},
			{bob, "system:serviceaccount:team-b:bob", []string{"team-b/api", "team-b/worker"}, teamA},
			{admin, "", []string{"team-a/web", "team-b/api", "team-b/worker"}, ""},
		} {
			tb := b.tab(t)
			tb.do("list", chromedp.Navigate(v.url+"/"), chromedp.WaitVisible(chromedp.CSS("table.apps")))
			rows := eval[[]string](tb, appRows)
			if !slices.Equal(rows, v.want) {
				t.Errorf("%s lists %v, want %v", v.url, rows, v.want)
			}
			main := tb.text("main")
			if v.forbidden != "" && !strings.Contains(main, "You may not list Applications in namespace "+v.forbidden) {
				t.Errorf("%s does not say %s is forbidden:\n%s", v.url, v.forbidden, main)
			}
			if v.who != "" && !strings.Contains(tb.text(".viewer"), v.who) {
				t.Errorf("%s does not name the viewer %s: %q", v.url, v.who, tb.text(".viewer"))
			}
			if v.url == admin {
				tb.do("filter", chromedp.SetValue(chromedp.CSS("#f-ns"), teamB), chromedp.Click(chromedp.CSS(`form.filter button`)))
				tb.waitNavigated("?namespace=team-b")
				rows = eval[[]string](tb, appRows)
				if !slices.Equal(rows, []string{"team-b/api", "team-b/worker"}) {
					t.Errorf("filtered by namespace: %v", rows)
				}
				tb.do("list again", chromedp.Navigate(v.url+"/"), chromedp.WaitVisible(chromedp.CSS("table.apps")),
					waitJS(`document.getElementById('live').dataset.state === 'live'`, 10*time.Second))
				tb.screenshot("ui-applications.png")
			}
		}
	})

	t.Run("a reader sees markup from Git and the cluster as text and no Sync button", func(t *testing.T) {
		tb := b.tab(t)
		tb.do("app page", chromedp.Navigate(alice+"/apps/team-a/web"), chromedp.WaitVisible(chromedp.CSS("#app-sync")))
		eval[bool](tb, `document.querySelectorAll('details').forEach(d => d.open = true) || true`)
		history := tb.text("table.history")
		shownAnnotations := eval[string](tb, `Array.from(document.querySelectorAll('ul.tree .annotations dd'), d => d.textContent).join('\n')`)
		for _, p := range xss {
			if !strings.Contains(history, p) {
				t.Errorf("payload %q of the commit message is not shown as text in the history:\n%s", p, history)
			}
			if !strings.Contains(shownAnnotations, p) {
				t.Errorf("payload %q of the annotations is not shown as text on the object:\n%s", p, shownAnnotations)
			}
		}
		imgs, scripts := eval[int](tb, `document.querySelectorAll('img').length`), eval[int](tb, `document.scripts.length`)
		buttons := eval[int](tb, `document.querySelectorAll('#sync-now').length`)
		if imgs != 0 || scripts != 1 {
			t.Errorf("a payload became markup: %d img, %d script elements", imgs, scripts)
		}
		if buttons != 0 {
			t.Error("the Sync button is shown to a viewer who may not patch the Application")
		}
	})

	t.Run("a kubectl edit shows OutOfSync and the diff without a reload, the revert Synced", func(t *testing.T) {
		tb := b.tab(t)
		tb.do("app page", chromedp.Navigate(alice+"/apps/team-a/web"), chromedp.WaitVisible(chromedp.CSS("#app-sync")),
			waitJS(`document.getElementById('live').dataset.state === 'live'`, 10*time.Second))
		eval[bool](tb, `window.notReloaded = true`)
		kubectlEdit(t, e, teamA, "deployment/web", "1", "3")
		tb.shownWithin("OutOfSync with the diff", `document.getElementById('app-sync').textContent.includes('OutOfSync') &&
			!!document.querySelector('pre.diff') && document.querySelector('pre.diff').textContent.includes('+  replicas: 1')`)
		diff := tb.text("pre.diff")
		if !strings.Contains(diff, "-  replicas: 3") || !strings.Contains(tb.text("#diff"), "Deployment/web") {
			t.Errorf("the diff does not show what a sync would change:\n%s", diff)
		}
		tb.screenshot("ui-drift.png")
		kubectlEdit(t, e, teamA, "deployment/web", "3", "1")
		tb.shownWithin("Synced after the revert", `document.getElementById('app-sync').textContent.trim() === 'Synced' && !document.querySelector('pre.diff')`)
		if !eval[bool](tb, `window.notReloaded === true`) {
			t.Error("the page reloaded: the live update must swap the content in place")
		}
	})

	t.Run("a viewer allowed to patch syncs with the button", func(t *testing.T) {
		tb := b.tab(t)
		tb.do("app page", chromedp.Navigate(bob+"/apps/team-b/api"), chromedp.WaitVisible(chromedp.CSS("#sync-now")))
		if s := tb.text("#app-sync"); !strings.Contains(s, "OutOfSync") {
			t.Fatalf("a manual Application before its first sync shows %q", s)
		}
		tb.do("press Sync now", chromedp.Click(chromedp.CSS("#sync-now")), chromedp.WaitVisible(chromedp.CSS("#sync-request")),
			waitJS(`document.getElementById('sync-request').textContent.includes('handled') &&
				document.getElementById('app-sync').textContent.trim() === 'Synced'`, 30*time.Second))
		app := e.waitApp(t, teamB, "api", func(a *kv1.Application) bool { return a.Status.LastAppliedRevision != "" })
		if len(app.Status.History) != 1 || app.Status.History[0].Trigger != controller.TriggerRequest {
			t.Errorf("history after the button: %+v", app.Status.History)
		}
		if _, err := e.cs.AppsV1().Deployments(teamB).Get(ctx, "api", metav1.GetOptions{}); err != nil {
			t.Errorf("the sync applied nothing: %v", err)
		}
		tb.do("objects", chromedp.Navigate(bob+"/apps/team-b/api"), chromedp.WaitVisible(chromedp.CSS("ul.tree")),
			waitJS(`document.querySelectorAll('ul.tree li').length >= 5 && document.getElementById('live').dataset.state === 'live'`, 30*time.Second))
		tree := tb.text("ul.tree")
		for _, want := range []string{"ConfigMap", "Deployment", "ReplicaSet", "Pod", "Service"} {
			if !strings.Contains(tree, want) {
				t.Errorf("the object tree lacks a %s:\n%s", want, tree)
			}
		}
		tb.screenshot("ui-application.png")
	})

	t.Run("an open page says stale when its updates stop", func(t *testing.T) {
		tb := b.tab(t)
		tb.do("list", chromedp.Navigate(admin+"/"), chromedp.WaitVisible(chromedp.CSS("table.apps")),
			waitJS(`document.getElementById('live').dataset.state === 'live'`, 10*time.Second))
		stopAdmin()
		tb.do("stale", waitJS(`document.getElementById('live').dataset.state === 'stale'`, 10*time.Second))
		if s := tb.text("#live"); !strings.Contains(s, "stale") || !strings.Contains(s, "older data") {
			t.Errorf("the badge says %q", s)
		}
		if n := len(eval[[]string](tb, appRows)); n != 3 {
			t.Errorf("the stale page lost its rows: %d", n)
		}
	})
}

// shownWithin waits for the page to satisfy the expression and fails the
// test when that took longer than liveDeadline (it waits on, up to 30 s,
// to say how long it did take).
func (tb *browserTab) shownWithin(what, expr string) {
	t := tb.t
	t.Helper()
	start := time.Now()
	tb.do(what, waitJS(expr, 30*time.Second))
	took := time.Since(start).Round(time.Millisecond)
	t.Logf("%s: shown %s after the edit", what, took)
	if took > liveDeadline {
		t.Errorf("%s: shown %s after the edit, want within %s", what, took, liveDeadline)
	}
}

// waitNavigated waits up to 10 s for the tab to have loaded an address
// holding part (a form's submission). A Poll in the page (waitJS) would
// end with the navigation ("inspected target navigated"): this polls from
// outside.
func (tb *browserTab) waitNavigated(part string) {
	t, tab := tb.t, tb.ctx
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		loc, err := chromedp.Run(tab, chromedp.Location())
		if err == nil && strings.Contains(loc, part) {
			if done, err := chromedp.Run(tab, chromedp.Evaluate[bool](`document.readyState === 'complete'`)); err == nil && done {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page did not load an address with %q (at %q, %v)", part, loc, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kubectlEdit runs the real `kubectl edit` on obj with an editor that
// replaces "replicas: from" by "replicas: to".
func kubectlEdit(t *testing.T, e *browserEnv, ns, obj, from, to string) {
	t.Helper()
	editor := filepath.Join(t.TempDir(), "editor")
	script := fmt.Sprintf("#!/bin/sh\nsed -i 's/^  replicas: %s$/  replicas: %s/' \"$1\"\n", from, to)
	if err := os.WriteFile(editor, []byte(script), 0o755); err != nil { //nolint:gosec // an editor script must be executable
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), filepath.Join(clustertest.Assets(), "kubectl"), "--kubeconfig", e.cluster.KubeconfigPath, "-n", ns, "edit", obj)
	cmd.Env = append(os.Environ(), "KUBE_EDITOR="+editor)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "edited") {
		t.Fatalf("kubectl edit %s: %v\n%s", obj, err, out)
	}
}

// waitApp waits up to a minute for ns/name to satisfy cond, failing t.
func (e *browserEnv) waitApp(t *testing.T, ns, name string, cond func(*kv1.Application) bool) *kv1.Application {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	app := &kv1.Application{}
	for {
		err := e.admin.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, app)
		if err == nil && cond(app) {
			return app
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s/%s: err %v, sync %q, conditions %+v", ns, name, err, app.Status.Sync.Status, app.Status.Conditions)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

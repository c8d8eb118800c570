package controller_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/yaml"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/cli"
	"github.com/keyless-cd/keyless/internal/gitserver"
	"github.com/keyless-cd/keyless/internal/localcluster/clustertest"
)

func manifests(image, greeting string) map[string]string {
	return map[string]string{
		"deploy/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  greeting: " + greeting + "\n",
		"deploy/deploy.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
      containers:
      - name: web
        securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
        image: ` + image + `
`,
		"deploy/svc.yaml": "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {app: web}\n  ports:\n  - port: 80\n",
	}
}

var dev = &object.Signature{Name: "Dana Developer", Email: "dana@example.com"}

func (e *env) push(files map[string]string, del []string, msg string) string {
	e.t.Helper()
	author := *dev
	author.When = time.Now()
	sha, err := e.git.Commit(e.t.Context(), repoName, gitserver.Commit{Files: files, Delete: del, Message: msg, Author: &author,
		Committer: &object.Signature{Name: "CI", Email: "ci@example.com", When: time.Now()}})
	if err != nil {
		e.t.Fatal(err)
	}
	return sha
}

func (e *env) gitlabHook(token string) int {
	e.t.Helper()
	body := fmt.Sprintf(`{"object_kind":"push","ref":"refs/heads/main","project":{"git_http_url":%q}}`, e.git.RepoURL(repoName))
	req, _ := http.NewRequestWithContext(e.t.Context(), http.MethodPost, e.hookURL+"/hooks/gitlab", strings.NewReader(body))
	req.Header.Set("X-Gitlab-Token", token)
	req.Header.Set("X-Gitlab-Event", "Push Hook")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

func (e *env) githubHook(secret, body string) int {
	e.t.Helper()
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	req, _ := http.NewRequestWithContext(e.t.Context(), http.MethodPost, e.hookURL+"/hooks/github", strings.NewReader(body))
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	req.Header.Set("X-GitHub-Event", "push")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

func (e *env) image() string {
	d, err := e.cs.AppsV1().Deployments(appNS).Get(e.t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		return "error: " + err.Error()
	}
	return d.Spec.Template.Spec.Containers[0].Image
}

func (e *env) waitImage(image string, timeout time.Duration) {
	e.t.Helper()
	waitFor(e.t, timeout, "image "+image, func() (bool, string) {
		got := e.image()
		return got == image, got
	})
}

func condition(app *kv1.Application, typ string) string {
	c := apimeta.FindStatusCondition(app.Status.Conditions, typ)
	if c == nil {
		return typ + "=<none>"
	}
	return fmt.Sprintf("%s=%s %s: %s", typ, c.Status, c.Reason, c.Message)
}

func (e *env) waitApp(name, what string, timeout time.Duration, ok func(*kv1.Application) bool) *kv1.Application {
	e.t.Helper()
	var app *kv1.Application
	waitFor(e.t, timeout, what, func() (bool, string) {
		app = e.app(name)
		return ok(app), fmt.Sprintf("sync=%+v health=%+v %s %s", app.Status.Sync, app.Status.Health, condition(app, kv1.ReadyCondition), condition(app, kv1.StalledCondition))
	})
	return app
}

func ready(app *kv1.Application) bool {
	return apimeta.IsStatusConditionTrue(app.Status.Conditions, kv1.ReadyCondition) && app.Status.ObservedGeneration == app.Generation
}

// TestSeedFlow walks the first seed document's GitOps answer end to end with
// the controller holding only its namespaced Roles.
func TestSeedFlow(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.startController(time.Hour)
	first := e.push(manifests("registry.example.com/web:1.0", "hello"), nil, "initial deploy")

	t.Log("the seed's Argo CD Application is imported with keyless import argocd")
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
	// What Argo CD keeps elsewhere: the repository credential; and a short interval.
	app.Spec.Source.SecretRef = &kv1.LocalObjectReference{Name: "myapp-git"}
	app.Spec.Interval = &metav1.Duration{Duration: 5 * time.Second}
	if err := e.admin.Create(ctx, app); err != nil {
		t.Fatal(err)
	}

	t.Log("created → Synced/Healthy with the commit recorded")
	got := e.waitApp("web", "Ready", 60*time.Second, ready)
	if got.Status.Sync.Status != kv1.SyncStatusSynced || got.Status.Health.Status != kv1.HealthHealthy || got.Status.LastAppliedRevision != first {
		t.Fatalf("status after first sync: %+v", got.Status)
	}
	if h := got.Status.History; len(h) == 0 || h[0].Author != "Dana Developer <dana@example.com>" || h[0].Committer != "CI <ci@example.com>" || h[0].Result != "Succeeded" || h[0].Message != "initial deploy" {
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

	code, out, errOut = e.keyless("", "get", "apps", "-n", appNS)
	if code != 0 || !strings.Contains(out, "web") || !strings.Contains(out, "Synced") || !strings.Contains(out, "Healthy") || !strings.Contains(out, first[:7]) || !strings.Contains(out, "Dana Developer") {
		t.Fatalf("keyless get apps: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = e.keyless("", "history", "web", "-n", appNS)
	if code != 0 || !strings.Contains(out, first[:7]) || !strings.Contains(out, "initial deploy") || !strings.Contains(out, "CI <ci@example.com>") {
		t.Fatalf("keyless history: exit %d\n%s%s", code, out, errOut)
	}

	t.Log("a tag bump is applied by polling")
	e.push(map[string]string{"deploy/deploy.yaml": strings.Replace(manifests("", "")["deploy/deploy.yaml"], "image: \n", "image: registry.example.com/web:1.1\n", 1)}, nil, "chore(deploy): web 1.1")
	e.waitImage("registry.example.com/web:1.1", 30*time.Second)

	t.Log("with a long interval, a webhook applies the next push at once")
	patch := client.MergeFrom(e.app("web"))
	slow := e.app("web")
	slow.Spec.Interval = &metav1.Duration{Duration: time.Hour}
	if err := e.admin.Patch(ctx, slow, patch); err != nil {
		t.Fatal(err)
	}
	e.waitApp("web", "interval change observed", 30*time.Second, ready)
	third := e.push(manifests("registry.example.com/web:1.2", "hello"), nil, "chore(deploy): web 1.2")
	if code := e.gitlabHook("wrong-token"); code != http.StatusUnauthorized {
		t.Fatalf("gitlab hook with a wrong token: %d, want 401", code)
	}
	if code := e.githubHook("wrong-secret", `{"ref":"refs/heads/main","repository":{"clone_url":"`+e.git.RepoURL(repoName)+`"}}`); code != http.StatusUnauthorized {
		t.Fatalf("github hook with a bad signature: %d, want 401", code)
	}
	time.Sleep(2 * time.Second)
	if img := e.image(); img != "registry.example.com/web:1.1" {
		t.Fatalf("a refused webhook triggered a sync: image %s", img)
	}
	start := time.Now()
	if code := e.gitlabHook(hookSecret); code != http.StatusOK {
		t.Fatalf("gitlab hook: %d", code)
	}
	e.waitImage("registry.example.com/web:1.2", 20*time.Second)
	t.Logf("push → applied via webhook in %s", time.Since(start).Round(time.Millisecond))
	e.waitApp("web", "synced at the third commit", 20*time.Second, func(a *kv1.Application) bool {
		return ready(a) && a.Status.LastAppliedRevision == third
	})

	t.Log("a manual edit of a managed field is reverted")
	d, err := e.cs.AppsV1().Deployments(appNS).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	five := int32(5)
	d.Spec.Replicas = &five
	start = time.Now()
	if _, err := e.cs.AppsV1().Deployments(appNS).Update(ctx, d, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "replicas reverted to 1", func() (bool, string) {
		d, err := e.cs.AppsV1().Deployments(appNS).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return *d.Spec.Replicas == 1, fmt.Sprint(*d.Spec.Replicas)
	})
	t.Logf("drift → reverted in %s", time.Since(start).Round(time.Millisecond))

	t.Log("a deleted managed object is recreated")
	if err := e.cs.CoreV1().ConfigMaps(appNS).Delete(ctx, "settings", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "ConfigMap recreated", func() (bool, string) {
		_, err := e.cs.CoreV1().ConfigMaps(appNS).Get(ctx, "settings", metav1.GetOptions{})
		return err == nil, errString(err)
	})

	t.Log("a file removed from Git is pruned")
	pruneCommit := e.push(nil, []string{"deploy/svc.yaml"}, "remove the service")
	e.gitlabHook(hookSecret)
	waitFor(t, 20*time.Second, "Service pruned", func() (bool, string) {
		_, err := e.cs.CoreV1().Services(appNS).Get(ctx, "web", metav1.GetOptions{})
		return apierrors.IsNotFound(err), errString(err)
	})

	t.Log("a render error keeps the last good state running and stalls with file:line")
	bad := e.push(map[string]string{"deploy/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  labels: [oops\n"}, nil, "broken yaml")
	e.gitlabHook(hookSecret)
	got = e.waitApp("web", "Stalled on the render error", 20*time.Second, func(a *kv1.Application) bool {
		return apimeta.IsStatusConditionTrue(a.Status.Conditions, kv1.StalledCondition)
	})
	if msg := condition(got, kv1.StalledCondition); !strings.Contains(msg, "deploy/cm.yaml:") || !strings.Contains(msg, "RenderFailed") {
		t.Fatalf("stalled condition: %s", msg)
	}
	if got.Status.LastAppliedRevision != pruneCommit || got.Status.History[0].Revision != bad || got.Status.History[0].Result != "Failed" {
		t.Fatalf("status after a bad commit: lastApplied %s history %+v", got.Status.LastAppliedRevision, got.Status.History[0])
	}
	if img := e.image(); img != "registry.example.com/web:1.2" {
		t.Fatalf("last good state not kept: %s", img)
	}

	t.Log("an empty render prunes nothing")
	e.push(map[string]string{"deploy/README.md": "nothing to deploy\n"}, []string{"deploy/cm.yaml", "deploy/deploy.yaml"}, "empty")
	e.gitlabHook(hookSecret)
	e.waitApp("web", "refused empty render", 20*time.Second, func(a *kv1.Application) bool {
		return strings.Contains(condition(a, kv1.StalledCondition), "no objects")
	})
	if _, err := e.cs.AppsV1().Deployments(appNS).Get(ctx, "web", metav1.GetOptions{}); err != nil {
		t.Fatalf("empty render pruned the Deployment: %v", err)
	}

	t.Log("cross-namespace and cluster-scoped objects are refused, naming them")
	files := manifests("registry.example.com/web:1.2", "hello")
	files["deploy/other.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: sneaky\n  namespace: kube-system\n"
	files["deploy/cr.yaml"] = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: all\nrules: []\n"
	e.push(files, []string{"deploy/README.md"}, "sneaky")
	e.gitlabHook(hookSecret)
	e.waitApp("web", "refused objects", 20*time.Second, func(a *kv1.Application) bool {
		msg := condition(a, kv1.StalledCondition)
		return strings.Contains(msg, "ConfigMap/sneaky") && strings.Contains(msg, "ClusterRole/all")
	})
	if _, err := e.cs.CoreV1().ConfigMaps("kube-system").Get(ctx, "sneaky", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("cross-namespace object written: %v", err)
	}

	t.Log("a good commit clears the stall")
	good := e.push(manifests("registry.example.com/web:1.3", "hello"), []string{"deploy/other.yaml", "deploy/cr.yaml"}, "fix")
	e.gitlabHook(hookSecret)
	e.waitApp("web", "Ready at the fixed commit", 30*time.Second, func(a *kv1.Application) bool {
		return ready(a) && a.Status.LastAppliedRevision == good
	})

	t.Log("a Git outage sets Ready=False; recovery sets it back")
	e.git.SetDown(true)
	requestSync(t, e, "outage")
	e.waitApp("web", "Git failure reported", 20*time.Second, func(a *kv1.Application) bool {
		return strings.Contains(condition(a, kv1.ReadyCondition), "GitOperationFailed")
	})
	if img := e.image(); img != "registry.example.com/web:1.3" {
		t.Fatalf("outage changed the deployment: %s", img)
	}
	e.git.SetDown(false)
	e.waitApp("web", "Ready after the outage", 60*time.Second, ready)

	t.Log("a restarted controller makes no write on its first reconcile")
	e.stopController()
	// Only keyless's writes count (the controller's own, and the deployer's
	// it makes by impersonation): kube-controller-manager still updates
	// EndpointSlices and the like on its own schedule.
	controllerUser := "system:serviceaccount:" + controlNS + ":keyless-controller"
	keylessWrites := func() []clustertest.AuditEvent {
		var out []clustertest.AuditEvent
		for _, w := range e.cluster.Writes(t, appNS) {
			if w.User.Username == controllerUser {
				out = append(out, w)
			}
		}
		return out
	}
	before := len(keylessWrites())
	reconciles := reconcileCount(t)
	e.startController(time.Hour)
	waitFor(t, 20*time.Second, "the first reconcile after the restart", func() (bool, string) {
		n := reconcileCount(t)
		return n > reconciles, fmt.Sprint(n)
	})
	time.Sleep(time.Second) // the audit log is written after the response
	if after := keylessWrites(); len(after) != before {
		var extra []string
		for _, w := range after[before:] {
			extra = append(extra, w.User.Username+" "+w.Verb+" "+w.RequestURI)
		}
		t.Fatalf("restart made writes:\n%s", strings.Join(extra, "\n"))
	}

	t.Log("after the restart, drift is seen by a watch again (the interval is an hour)")
	e.editUntilReverted("web")

	t.Log("keyless sync asks the controller for a sync and reports it")
	code, out, errOut = e.keyless("", "sync", "web", "-n", appNS, "--timeout", "30s")
	if code != 0 || !strings.Contains(out, "Succeeded") {
		t.Fatalf("keyless sync: exit %d\n%s%s", code, out, errOut)
	}

	t.Log("deleting the Application deletes what it deployed")
	if err := e.admin.Delete(ctx, e.app("web")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "objects deleted with the Application", func() (bool, string) {
		_, dErr := e.cs.AppsV1().Deployments(appNS).Get(ctx, "web", metav1.GetOptions{})
		_, cErr := e.cs.CoreV1().ConfigMaps(appNS).Get(ctx, "settings", metav1.GetOptions{})
		err := e.admin.Get(ctx, types.NamespacedName{Namespace: appNS, Name: "web"}, &kv1.Application{})
		return apierrors.IsNotFound(dErr) && apierrors.IsNotFound(cErr) && apierrors.IsNotFound(err), fmt.Sprint(dErr, cErr, err)
	})

	t.Log("the Git cache of a repository no Application reads any more is deleted")
	waitFor(t, 30*time.Second, "the controller's Git cache emptied", func() (bool, string) {
		var left []string
		for _, sub := range []string{"repos", "checkouts"} {
			entries, _ := os.ReadDir(filepath.Join(e.cacheDir, sub))
			for _, en := range entries {
				left = append(left, sub+"/"+en.Name())
			}
		}
		return len(left) == 0, strings.Join(left, " ")
	})
}

// keyless runs the CLI against the test cluster as its admin.
func (e *env) keyless(stdin string, args ...string) (int, string, string) {
	e.t.Helper()
	var out, errOut bytes.Buffer
	args = append(args, "--kubeconfig="+e.cluster.KubeconfigPath)
	if args[0] == "import" {
		args = args[:len(args)-1]
	}
	code := cli.Run(e.t.Context(), args, cli.IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut})
	return code, out.String(), errOut.String()
}

// reconcileCount reads keyless_reconcile_total from the metrics registry.
func reconcileCount(t *testing.T) float64 {
	t.Helper()
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, f := range families {
		if f.GetName() == "keyless_reconcile_total" {
			for _, m := range f.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func requestSync(t *testing.T, e *env, value string) {
	t.Helper()
	app := e.app("web")
	patch := client.MergeFrom(app.DeepCopy())
	if app.Annotations == nil {
		app.Annotations = map[string]string{}
	}
	app.Annotations[kv1.SyncRequestedAnnotation] = value
	if err := e.admin.Patch(t.Context(), app, patch); err != nil {
		t.Fatal(err)
	}
}

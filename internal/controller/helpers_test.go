package controller_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/cli"
	"github.com/keyless-cd/keyless/internal/gitserver"
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

// keyless runs the CLI against the test cluster as its admin.
func (e *env) keyless(stdin string, args ...string) (int, string, string) {
	e.t.Helper()
	var out, errOut bytes.Buffer
	args = append(args, "--kubeconfig="+e.cluster.KubeconfigPath)
	if args[0] == "import" || args[0] == "evidence" { // offline commands: no cluster flags
		args = args[:len(args)-1]
	}
	code := cli.Run(e.t.Context(), args, cli.IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut})
	return code, out.String(), errOut.String()
}

// reconcileCount reads keyless_reconcile_total from the metrics registry.
func reconcileCount(t *testing.T) float64 {
	t.Helper()
	return counterSum(t, "keyless_reconcile_total")
}

// counterSum is the sum of the counter name's series in the metrics registry.
func counterSum(t *testing.T, name string) float64 {
	t.Helper()
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, f := range families {
		if f.GetName() == name {
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

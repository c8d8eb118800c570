package controller_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

// Faults, each against real components: the last good state keeps running,
// the status says what is wrong, recovery needs no human, the history and
// the audit line hold every sync once, and nothing is written outside the
// Application's namespace (the apiserver's audit log says so).

// assertConverged checks what every fault test ends with: the Deployment
// runs image, the Application applied rev and recorded it once in its
// history and once (succeeded) in the audit line, and neither the
// controller nor the deployer wrote outside the app and controller
// namespaces.
func (e *env) assertConverged(rev, image string) {
	e.t.Helper()
	e.waitApp("web", "converged at "+kv1.ShortSHA(rev), 90*time.Second, func(a *kv1.Application) bool {
		return ready(a) && a.Status.LastAppliedRevision == rev
	})
	if got := e.image(); got != image {
		e.t.Errorf("image %s, want %s", got, image)
	}
	e.succeededOnce(rev)
	n := 0
	for _, r := range e.audit.records(e.t) {
		if r.App == "web" && r.Revision == rev && r.Result == kv1.SyncResultSucceeded {
			n++
		}
	}
	if n != 1 {
		e.t.Errorf("the audit line records %d successful syncs of %s", n, kv1.ShortSHA(rev))
	}
	for _, w := range e.cluster.WritesOutside(e.t, []string{controllerU, deployerU}, appNS, controlNS) {
		e.t.Errorf("a write outside the namespace: %s %s by %s", w.Verb, w.RequestURI, w.User.Username)
	}
}

// stillRunning fails unless the Deployment still runs image.
func (e *env) stillRunning(image string) {
	e.t.Helper()
	if got := e.image(); got != image {
		e.t.Fatalf("during the fault the Deployment changed to %s; the last good state was %s", got, image)
	}
}

// TestGitServerThatNeverAnswers: the Git server accepts connections and
// answers nothing; each ls-remote ends at --git-timeout with a message
// saying so, the last good state keeps running, and once the server
// answers again the commit pushed meanwhile is applied.
func TestGitServerThatNeverAnswers(t *testing.T) {
	e := newEnv(t)
	e.gitTimeout = 3 * time.Second
	e.startController(time.Hour)
	first := e.push(manifests("registry.example.com/web:1.0", "hello"), nil, "initial deploy")
	e.createApp("web", "deploy", time.Hour) // only the sync request below reads Git
	e.assertConverged(first, "registry.example.com/web:1.0")

	next := e.bumpTo("registry.example.com/web:1.1") // pushed over HTTP: before the hang
	e.git.SetHang(true)
	t.Cleanup(func() { e.git.SetHang(false) })
	requestSync(t, e, "hang")
	got := e.waitApp("web", "the hang reported", 60*time.Second, func(a *kv1.Application) bool {
		return strings.Contains(condition(a, kv1.ReadyCondition), kv1.ReasonGitFailed)
	})
	msg := condition(got, kv1.ReadyCondition)
	if !strings.Contains(msg, "deadline") && !strings.Contains(msg, "timeout") && !strings.Contains(msg, "timed out") {
		t.Errorf("Ready %q does not say the Git server timed out", msg)
	}
	e.stillRunning("registry.example.com/web:1.0")
	e.git.SetHang(false)
	e.assertConverged(next, "registry.example.com/web:1.1")
}

// TestRotatedGitCredential: the forge rotates the token; the Application
// reports the refused credential and keeps running, and syncs the commit
// pushed meanwhile as soon as its Secret holds the new token.
func TestRotatedGitCredential(t *testing.T) {
	e, _ := seedApp(t, time.Hour) // only the sync request below reads Git
	ctx := t.Context()
	const rotated = "glpat-rotated-credential"
	next := e.bumpTo("registry.example.com/web:1.1") // pushed with the old token
	e.git.SetToken(rotated)
	requestSync(t, e, "rotated")
	got := e.waitApp("web", "the refused credential reported", 60*time.Second, func(a *kv1.Application) bool {
		return strings.Contains(condition(a, kv1.ReadyCondition), kv1.ReasonGitFailed)
	})
	if msg := condition(got, kv1.ReadyCondition); strings.Contains(msg, gitToken) || strings.Contains(msg, rotated) {
		t.Errorf("the message shows a token: %s", msg)
	}
	e.stillRunning("registry.example.com/web:1.0")

	s := &corev1.Secret{}
	if err := e.admin.Get(ctx, client.ObjectKey{Namespace: appNS, Name: "myapp-git"}, s); err != nil {
		t.Fatal(err)
	}
	s.Data["password"] = []byte(rotated)
	if err := e.admin.Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	e.assertConverged(next, "registry.example.com/web:1.1")
}

// TestDeployerRoleRemovedAndRestored: without the deployer's Role every
// write is forbidden; the dry-run refuses the set first, so nothing of it
// is applied, the status names the refusal, and the sync retries until the
// Role is back.
func TestDeployerRoleRemovedAndRestored(t *testing.T) {
	e, _ := seedApp(t, kv1.MinInterval)
	ctx := t.Context()
	role := &rbacv1.Role{}
	if err := e.admin.Get(ctx, client.ObjectKey{Namespace: appNS, Name: "keyless-deployer"}, role); err != nil {
		t.Fatal(err)
	}
	if err := e.admin.Delete(ctx, role); err != nil {
		t.Fatal(err)
	}
	next := e.bumpTo("registry.example.com/web:1.1")
	got := e.waitApp("web", "the forbidden apply reported", 60*time.Second, func(a *kv1.Application) bool {
		return strings.Contains(condition(a, kv1.ReadyCondition), kv1.ReasonApplyFailed)
	})
	if msg := condition(got, kv1.ReadyCondition); !strings.Contains(msg, "forbidden") {
		t.Errorf("Ready %q does not name the refusal", msg)
	}
	e.stillRunning("registry.example.com/web:1.0")

	restored := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: role.Name, Namespace: role.Namespace, Labels: role.Labels}, Rules: role.Rules}
	if err := e.admin.Create(ctx, restored); err != nil {
		t.Fatal(err)
	}
	e.assertConverged(next, "registry.example.com/web:1.1")
}

// TestWebhookFloodWhileSyncing: 10,000 push hooks (a few valid, most with a
// wrong token) while a commit syncs: the receiver answers each without a
// server error, the commit is applied and recorded once, and the
// controller still reacts to the next real push at once.
func TestWebhookFloodWhileSyncing(t *testing.T) {
	e, _ := seedApp(t, time.Hour)
	before := reconcileCount(t)
	next := e.bumpTo("registry.example.com/web:1.1")
	body := fmt.Sprintf(`{"object_kind":"push","ref":"refs/heads/main","project":{"git_http_url":%q}}`, e.git.RepoURL(repoName))
	const total, workers = 10000, 32
	var sent atomic.Int64
	codes := sync.Map{}
	var wg sync.WaitGroup
	httpc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := sent.Add(1)
				if i > total {
					return
				}
				token := "wrong-token"
				if i%100 == 0 {
					token = hookSecret
				}
				req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, e.hookURL+"/hooks/gitlab", strings.NewReader(body))
				req.Header.Set("X-Gitlab-Token", token)
				req.Header.Set("X-Gitlab-Event", "Push Hook")
				code := -1
				if resp, err := httpc.Do(req); err == nil {
					code = resp.StatusCode
					_ = resp.Body.Close()
				}
				v, _ := codes.LoadOrStore(code, new(atomic.Int64))
				v.(*atomic.Int64).Add(1)
			}
		}()
	}
	wg.Wait()
	summary := map[int]int64{}
	codes.Range(func(k, v any) bool {
		summary[k.(int)] = v.(*atomic.Int64).Load()
		return true
	})
	t.Logf("10000 hooks answered: %v; %0.f reconciles", summary, reconcileCount(t)-before)
	for code := range summary {
		if code < 200 || code >= 500 {
			t.Errorf("hooks answered %d (%d times): want every one answered, none a server error", code, summary[code])
		}
	}
	if summary[http.StatusUnauthorized]+summary[http.StatusForbidden] == 0 {
		t.Errorf("no hook with the wrong token was refused: %v", summary)
	}
	e.assertConverged(next, "registry.example.com/web:1.1")
	if n := reconcileCount(t) - before; n > 1000 {
		t.Errorf("%0.f reconciles for 100 valid hooks: the triggers were not coalesced", n)
	}

	t.Log("after the flood, one real push syncs at once")
	last := e.bumpTo("registry.example.com/web:1.2")
	if code := e.gitlabHook(hookSecret); code >= 300 {
		t.Fatalf("hook answered %d", code)
	}
	e.assertConverged(last, "registry.example.com/web:1.2")
}

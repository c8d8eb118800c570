package controller_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"
	"golang.org/x/crypto/ssh"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/controller"
	"github.com/keyless-cd/keyless/internal/gitserver"
	"github.com/keyless-cd/keyless/internal/gitsource"
	"github.com/keyless-cd/keyless/internal/webhook"
)

// forgeEnv is the controller suite's env with a real Gitea holding the
// Application's repository.
type forgeEnv struct {
	*env
	gitea *gitserver.Gitea
	repo  string
}

func newForgeEnv(t *testing.T) *forgeEnv {
	t.Helper()
	e := newEnv(t)
	g, err := gitserver.StartGitea(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Stop)
	f := &forgeEnv{env: e, gitea: g, repo: "web"}
	if err := g.CreateRepo(t.Context(), f.repo); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Name: "gitea-git", Namespace: appNS,
			Labels: map[string]string{kv1.CredentialLabel: kv1.CredentialGit}, Annotations: map[string]string{kv1.GitHostAnnotation: "127.0.0.1"}},
			StringData: map[string]string{"username": gitserver.GiteaUser, "password": g.Token()}},
		{ObjectMeta: metav1.ObjectMeta{Name: "gitea-status", Namespace: appNS,
			Labels: map[string]string{kv1.CredentialLabel: kv1.CredentialForge}, Annotations: map[string]string{kv1.GitHostAnnotation: "127.0.0.1"}},
			StringData: map[string]string{kv1.CommitStatusTokenKey: g.Token()}},
		{ObjectMeta: metav1.ObjectMeta{Name: controller.NamespaceWebhookSecret, Namespace: appNS},
			StringData: map[string]string{controller.NamespaceWebhookGitHubKey: "gitea-hook-secret-0123456789"}},
	} {
		if err := e.admin.Create(t.Context(), s); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// push commits files to Gitea as Dana, like a developer would.
func (f *forgeEnv) push(files map[string]string, msg string) string {
	f.t.Helper()
	author := *dev
	author.When = time.Now()
	sha, err := f.gitea.Commit(f.t.Context(), f.repo, gitserver.Commit{Files: files, Message: msg, Author: &author,
		Committer: &object.Signature{Name: "CI", Email: "ci@example.com", When: time.Now()}})
	if err != nil {
		f.t.Fatal(err)
	}
	return sha
}

// waitStatus waits until Gitea's newest status of the Application's
// context on sha has state, and returns it.
func (f *forgeEnv) waitStatus(sha, state string, timeout time.Duration) gitserver.CommitStatus {
	f.t.Helper()
	var got gitserver.CommitStatus
	waitForOr(f.t, timeout, fmt.Sprintf("Gitea status %s on %s", state, kv1.ShortSHA(sha)), func() (bool, string) {
		all, err := f.gitea.Statuses(f.t.Context(), f.repo, sha)
		if err != nil {
			return false, err.Error()
		}
		for _, s := range all {
			if s.Context == "keyless/"+appNS+"/web" {
				got = s
				return s.State == state, fmt.Sprintf("%+v", s)
			}
		}
		return false, fmt.Sprintf("no status of keyless/%s/web among %+v", appNS, all)
	}, func() string {
		app := f.app("web")
		evs, _ := f.cs.CoreV1().Events(appNS).List(f.t.Context(), metav1.ListOptions{})
		var msgs []string
		for _, ev := range evs.Items {
			msgs = append(msgs, ev.Reason+": "+ev.Message)
		}
		return fmt.Sprintf("app: %s %s; events: %s", condition(app, kv1.ReadyCondition), app.Status.LastAttemptedRevision, strings.Join(msgs, " | "))
	})
	return got
}

func (f *forgeEnv) createApp(repoURL, apiURL, secret string) {
	f.t.Helper()
	app := &kv1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: appNS},
		Spec: kv1.ApplicationSpec{
			Source: kv1.ApplicationSource{RepoURL: repoURL, TargetRevision: "main", Path: "deploy",
				SecretRef: &kv1.LocalObjectReference{Name: secret}},
			SyncPolicy: &kv1.SyncPolicy{Automated: &kv1.AutomatedSyncPolicy{Prune: true, SelfHeal: true}},
			// An hour: anything sooner is Gitea's webhook.
			Interval: &metav1.Duration{Duration: time.Hour},
			CommitStatus: &kv1.CommitStatus{Provider: kv1.ForgeGitea, SecretRef: kv1.LocalObjectReference{Name: "gitea-status"},
				APIURL: apiURL, TargetURL: "https://keyless.example/myapp/web"},
		},
	}
	if err := f.admin.Create(f.t.Context(), app); err != nil {
		f.t.Fatal(err)
	}
}

// TestGiteaPushWebhookSyncsAndReportsCommitStatus: a push to a real Gitea
// reaches the controller through Gitea's own signed push webhook, is
// applied, and the result shows on the commit through Gitea's API —
// success for a good commit, failure with the reason for a bad one (the
// last good state left running), and a rollback pushed to Gitea syncs.
func TestGiteaPushWebhookSyncsAndReportsCommitStatus(t *testing.T) {
	f := newForgeEnv(t)
	first := f.push(manifests("registry.example.com/web:1.0", "hello"), "initial deploy")
	f.startController(time.Hour)
	if err := f.gitea.AddWebhook(t.Context(), f.repo, f.hookURL+"/hooks/"+webhook.GitHub+"/"+appNS, "gitea-hook-secret-0123456789"); err != nil {
		t.Fatal(err)
	}
	f.createApp(f.gitea.RepoURL(f.repo), "", "gitea-git")
	f.waitApp("web", "Ready", 60*time.Second, func(a *kv1.Application) bool { return ready(a) && a.Status.LastAppliedRevision == first })
	st := f.waitStatus(first, "success", 30*time.Second)
	if st.TargetURL != "https://keyless.example/myapp/web" || st.Description == "" {
		t.Errorf("status %+v: want the target URL and a description", st)
	}

	t.Log("a push: Gitea's webhook triggers the sync, the commit turns success")
	second := f.push(manifests("registry.example.com/web:2.0", "hello"), "web 2.0")
	f.waitImage("registry.example.com/web:2.0", 30*time.Second)
	f.waitStatus(second, "success", 30*time.Second)

	t.Log("a commit the controller refuses: failure with the reason, 2.0 keeps running")
	bad := manifests("registry.example.com/web:3.0", "hello")
	bad["deploy/clusterrole.yaml"] = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: grab-everything\nrules: []\n"
	third := f.push(bad, "web 3.0 and a ClusterRole")
	st = f.waitStatus(third, "failure", 30*time.Second)
	if !strings.Contains(st.Description, "ClusterRole") || len([]rune(st.Description)) > 140 {
		t.Errorf("failure description %q: want the refused object named, at most 140 characters", st.Description)
	}
	if img := f.image(); img != "registry.example.com/web:2.0" {
		t.Fatalf("image %s after the refused commit, want the last good 2.0", img)
	}

	t.Log("keyless rollback --to the good commit, pushed to Gitea: synced, success on the rollback commit")
	code, out, errOut := f.keyless("", "rollback", "web", "-n", appNS, "--to", second, "--author", "Ada Admin <ada@example.com>", "--push",
		"--allow-insecure-http") // Gitea is plain http:// on loopback
	if code != 0 {
		t.Fatalf("rollback: exit %d\n%s\n%s", code, out, errOut)
	}
	app := f.waitApp("web", "synced after the rollback", 30*time.Second, func(a *kv1.Application) bool {
		return ready(a) && a.Status.LastAppliedRevision != third && a.Status.LastAppliedRevision != second && a.Status.LastAppliedRevision != first
	})
	if img := f.image(); img != "registry.example.com/web:2.0" {
		t.Fatalf("image %s after the rollback, want 2.0", img)
	}
	f.waitStatus(app.Status.LastAppliedRevision, "success", 30*time.Second)
	if h := app.Status.History[0]; !strings.Contains(h.Author, "Ada Admin") {
		t.Errorf("history[0] %+v: want the rollback's author", h)
	}
}

// TestGiteaDeployKeyOverSSH: the Application reads its repository over
// Gitea's built-in SSH server with a read-only deploy key.
func TestGiteaDeployKeyOverSSH(t *testing.T) {
	f := newForgeEnv(t)
	ctx := t.Context()
	key, signer, err := gitserver.NewDeployKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.gitea.AddDeployKey(ctx, f.repo, "keyless", ssh.MarshalAuthorizedKey(signer.PublicKey())); err != nil {
		t.Fatal(err)
	}
	known, err := f.gitea.KnownHosts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "gitea-ssh", Namespace: appNS,
			Labels: map[string]string{kv1.CredentialLabel: kv1.CredentialGit}, Annotations: map[string]string{kv1.GitHostAnnotation: "127.0.0.1"}},
		Data: map[string][]byte{gitsource.KeyIdentity: key, gitsource.KeyKnownHosts: known},
	}
	if err := f.admin.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	first := f.push(manifests("registry.example.com/web:1.0", "hello"), "initial deploy")
	f.startController(time.Hour)
	f.createApp(f.gitea.SSHRepoURL(f.repo), f.gitea.URL()+"/api/v1", "gitea-ssh")
	f.waitApp("web", "Ready over Gitea's SSH", 60*time.Second, func(a *kv1.Application) bool { return ready(a) && a.Status.LastAppliedRevision == first })
	// The status API is reached over HTTP on the same host: apiURL says where.
	f.waitStatus(first, "success", 30*time.Second)
}

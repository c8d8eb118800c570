package cli

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/gitserver"
	"github.com/keyless-cd/keyless/internal/install"
	"github.com/keyless-cd/keyless/internal/localcluster"
	"github.com/keyless-cd/keyless/internal/localcluster/clustertest"
)

// runWithEnv is run with env as the whole environment keyless reads.
func runWithEnv(ctx context.Context, t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Run(ctx, args, IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut, Getenv: func(k string) string { return env[k] }})
	return code, out.String(), errOut.String()
}

// TestRollbackCommand: the Application is read from the cluster, its own Git
// Secret is the credential; without --push the diff of what the rollback
// deploys is shown and nothing is pushed; with --push the rollback commit,
// authored by the person running it, is the branch's new tip.
func TestRollbackCommand(t *testing.T) {
	ctx := t.Context()
	c := clustertest.Start(t, localcluster.Options{})
	if err := install.Apply(ctx, c.Config, install.Options{Namespaces: []string{"team-a"}}); err != nil {
		t.Fatal(err)
	}
	// The Git server is plain http:// on loopback: the Application's Secret
	// goes there only with --allow-insecure-http, as in the controller.
	kc, insecure := "--kubeconfig="+c.KubeconfigPath, "--allow-insecure-http"
	const token = "rollback-token"
	srv, err := gitserver.Start(gitserver.Options{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	if err := srv.CreateRepo(ctx, "apps", "main"); err != nil {
		t.Fatal(err)
	}
	cm := func(color string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {color: " + color + "}\n"
	}
	good, err := srv.Commit(ctx, "apps", gitserver.Commit{Message: "good", Files: map[string]string{"deploy/web/cm.yaml": cm("blue")}})
	if err != nil {
		t.Fatal(err)
	}
	bad, err := srv.Commit(ctx, "apps", gitserver.Commit{Message: "bad", Files: map[string]string{"deploy/web/cm.yaml": cm("red"), "other/x.yaml": cm("green")}})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kubeFlagsFor(c.KubeconfigPath).appClient()
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "git", Namespace: "team-a",
		Labels: map[string]string{kv1.CredentialLabel: kv1.CredentialGit}, Annotations: map[string]string{kv1.GitHostAnnotation: "127.0.0.1"}},
		StringData: map[string]string{"password": token}}); err != nil {
		t.Fatal(err)
	}
	app := &kv1.Application{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "team-a"}, Spec: kv1.ApplicationSpec{Source: kv1.ApplicationSource{
		RepoURL: srv.RepoURL("apps"), TargetRevision: "main", Path: "deploy/web", SecretRef: &kv1.LocalObjectReference{Name: "git"},
	}}}
	if err := cl.Create(ctx, app); err != nil {
		t.Fatal(err)
	}
	tip := func() *object.Commit {
		t.Helper()
		repo, err := git.CloneContext(ctx, memory.NewStorage(), nil, &git.CloneOptions{URL: srv.RepoURL("apps"), Auth: srv.Auth()})
		if err != nil {
			t.Fatal(err)
		}
		ref, _ := repo.Head()
		commit, err := repo.CommitObject(ref.Hash())
		if err != nil {
			t.Fatal(err)
		}
		return commit
	}

	t.Log("history: which revisions are rollback targets, and what a rollback to each would change")
	app.Status.LastAppliedRevision = bad
	app.Status.History = []kv1.SyncRecord{
		{Revision: bad, Result: kv1.SyncResultSucceeded, Trigger: "revision", Message: "bad", Approvers: []string{"bob", "carol"}},
		{Revision: strings.Repeat("f", 40), Result: kv1.SyncResultFailed, Trigger: "revision", Error: "render failed"},
		{Revision: good, Result: kv1.SyncResultSucceeded, Trigger: "revision", Message: "good"},
	}
	if err := cl.Status().Update(ctx, app); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(ctx, t, "history", "web", "-n", "team-a", "--changes", kc, insecure)
	if code != 0 {
		t.Fatalf("history --changes: exit %d\n%s%s", code, out, errOut)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 2 {
			rows[f[0]] = line
		}
	}
	if r := rows[kv1.ShortSHA(bad)]; !strings.Contains(r, "current") || !strings.Contains(r, "bob,carol") {
		t.Errorf("the applied revision's row %q: want current, approved by bob and carol at the forge", r)
	}
	if !strings.Contains(out, "APPROVERS") {
		t.Errorf("history:\n%s\nwant an APPROVERS column", out)
	}
	if r := rows[kv1.ShortSHA(good)]; !strings.Contains(r, "target") || !strings.Contains(r, "0 added, 1 changed, 0 removed (c ConfigMap/settings)") {
		t.Errorf("the good revision's row %q: want a target whose rollback changes ConfigMap/settings", r)
	}
	if r := rows["fffffff"]; strings.Contains(r, "target") {
		t.Errorf("a failed sync's row %q is no rollback target", r)
	}

	code, out, errOut = run(ctx, t, "rollback", "web", "-n", "team-a", "--to", good[:8], "--author", "Ada <ada@example.com>", kc, insecure)
	if code != 0 || !strings.Contains(out, "~ v1 ConfigMap settings") || !strings.Contains(out, "-  color: red") || !strings.Contains(out, "+  color: blue") || !strings.Contains(errOut, "not pushed") {
		t.Fatalf("dry run: exit %d\n%s%s", code, out, errOut)
	}
	if tip().Hash.String() != bad {
		t.Fatal("a rollback without --push pushed")
	}

	t.Setenv("HOME", t.TempDir()) // no ~/.gitconfig naming a user
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	code, out, errOut = runWithEnv(ctx, t, nil, "rollback", "web", "-n", "team-a", "--to", good, "--push", kc, insecure)
	if code != 1 || !strings.Contains(errOut, "--author") {
		t.Fatalf("no author anywhere: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runWithEnv(ctx, t, map[string]string{"GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "ada@example.com"},
		"rollback", "web", "-n", "team-a", "--to", good, "--push", kc, insecure)
	if code != 0 {
		t.Fatalf("push: exit %d\n%s%s", code, out, errOut)
	}
	head := tip()
	if strings.TrimSpace(out) != head.Hash.String() || head.ParentHashes[0].String() != bad || head.Author.Email != "ada@example.com" {
		t.Fatalf("tip %s (parent %v, author %v), stdout %q", head.Hash, head.ParentHashes, head.Author, out)
	}
	f, err := head.File("deploy/web/cm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := f.Contents(); s != cm("blue") {
		t.Errorf("deploy/web/cm.yaml after rollback = %q", s)
	}
	if _, err := head.File("other/x.yaml"); err != nil {
		t.Errorf("a file outside the Application's path was touched: %v", err)
	}
	code, _, errOut = run(ctx, t, "rollback", "web", "-n", "team-a", "--to", good, "--author", "Ada <ada@example.com>", "--push", kc, insecure)
	if code != 0 || !strings.Contains(errOut, "nothing to roll back") {
		t.Errorf("again: exit %d, %s", code, errOut)
	}
}

// TestCLIDoesNotSendARepointedApplicationsSecret: an editor points an
// Application at their own server. The controller refuses its Git Secret
// there, and so do the commands an admin runs to investigate it (history
// --changes, rollback): an unlabelled Secret, a Secret bound to another
// host, and plain http:// without --allow-insecure-http are refused before
// any request, naming the cause; the editor's server sees no credential.
func TestCLIDoesNotSendARepointedApplicationsSecret(t *testing.T) {
	ctx := t.Context()
	c := clustertest.Start(t, localcluster.Options{})
	if err := install.Apply(ctx, c.Config, install.Options{Namespaces: []string{"team-a"}}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []string
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.Path+" auth="+r.Header.Get("Authorization"))
		mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(evil.Close)
	port := evil.Listener.Addr().(*net.TCPAddr).Port
	cl, err := kubeFlagsFor(c.KubeconfigPath).appClient()
	if err != nil {
		t.Fatal(err)
	}
	const token = "team-a-deploy-token"
	secret := func(name string, labels, annotations map[string]string) {
		t.Helper()
		if err := cl.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "team-a", Labels: labels, Annotations: annotations},
			StringData: map[string]string{"username": "ci", "password": token}}); err != nil {
			t.Fatal(err)
		}
	}
	git := map[string]string{kv1.CredentialLabel: kv1.CredentialGit}
	secret("plain", nil, nil)
	secret("for-gitlab", git, map[string]string{kv1.GitHostAnnotation: "gitlab.example.com"})
	secret("for-loopback", git, map[string]string{kv1.GitHostAnnotation: "localhost"})
	cases := []struct {
		name, secret string
		args         []string
		want         string
	}{
		{"an unlabelled Secret", "plain", []string{"--allow-insecure-http"}, "is not labelled keyless.dev/credential=git"},
		{"a Secret bound to another host", "for-gitlab", []string{"--allow-insecure-http"}, `is for keyless.dev/git-host="gitlab.example.com", not for localhost:`},
		{"plain http", "for-loopback", nil, "over plain http://"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("web%d", i)
			app := &kv1.Application{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "team-a"}, Spec: kv1.ApplicationSpec{Source: kv1.ApplicationSource{
				RepoURL: fmt.Sprintf("http://localhost:%d/team-a/apps.git", port), TargetRevision: "main", Path: "deploy/web",
				SecretRef: &kv1.LocalObjectReference{Name: tc.secret},
			}}}
			if err := cl.Create(ctx, app); err != nil {
				t.Fatal(err)
			}
			app.Status.LastAppliedRevision = strings.Repeat("a", 40)
			app.Status.History = []kv1.SyncRecord{
				{Revision: strings.Repeat("a", 40), Result: kv1.SyncResultSucceeded, Trigger: "revision"},
				{Revision: strings.Repeat("b", 40), Result: kv1.SyncResultSucceeded, Trigger: "revision"},
			}
			if err := cl.Status().Update(ctx, app); err != nil {
				t.Fatal(err)
			}
			kc := "--kubeconfig=" + c.KubeconfigPath
			for _, cmd := range [][]string{
				append([]string{"history", name, "-n", "team-a", "--changes", kc}, tc.args...),
				append([]string{"rollback", name, "-n", "team-a", "--to", "HEAD~1", "--author", "Ada <ada@example.com>", kc}, tc.args...),
			} {
				code, out, errOut := run(ctx, t, cmd...)
				if code == 0 || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, "team-a/"+tc.secret) {
					t.Errorf("%s: exit %d, want an error naming Secret team-a/%s and %q\n%s%s", cmd[0], code, tc.secret, tc.want, out, errOut)
				}
				if strings.Contains(out+errOut, token) {
					t.Errorf("%s printed the token", cmd[0])
				}
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) > 0 {
		t.Errorf("the editor's server was contacted: %v", seen)
	}
}

package controller_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/controller"
	"github.com/keyless-cd/keyless/internal/gitserver"
)

// credentialSink is the editor's server: a public Git repository served
// through a proxy that records every header a request carries and answers
// forge status calls with 201, as a forge would.
type credentialSink struct {
	url string
	mu  sync.Mutex
	// headers are every request's header values, for "did a credential
	// arrive"; statuses counts commit status calls.
	headers  []string
	statuses int
}

func newCredentialSink(t *testing.T, files map[string]string) *credentialSink {
	t.Helper()
	pub, err := gitserver.Start(gitserver.Options{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Stop)
	if err := pub.CreateRepo(t.Context(), "evil/app", "main"); err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Commit(t.Context(), "evil/app", gitserver.Commit{Files: files, Message: "looks harmless"}); err != nil {
		t.Fatal(err)
	}
	target, _ := url.Parse(pub.URL())
	proxy := httputil.NewSingleHostReverseProxy(target)
	s := &credentialSink{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		for k, vs := range r.Header {
			s.headers = append(s.headers, k+": "+strings.Join(vs, ","))
		}
		status := strings.Contains(r.URL.Path, "/statuses/")
		if status {
			s.statuses++
		}
		s.mu.Unlock()
		if status {
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"id":1}`))
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	// Named as localhost: another host than the real forge's 127.0.0.1.
	s.url = strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) + "/evil/app.git"
	return s
}

// received reports whether any request carried secret.
func (s *credentialSink) received(secret string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range s.headers {
		if strings.Contains(h, secret) {
			return true
		}
	}
	return false
}

// waitEvent waits for an Event of reason on Application name whose message
// contains every one of want, and returns it.
func (e *env) waitEvent(name, reason string, timeout time.Duration, want ...string) string {
	e.t.Helper()
	var found string
	waitFor(e.t, timeout, fmt.Sprintf("a %s Event on %s naming %q", reason, name, want), func() (bool, string) {
		evs, err := e.cs.CoreV1().Events(appNS).List(e.t.Context(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + name + ",reason=" + reason})
		if err != nil {
			return false, err.Error()
		}
		var msgs []string
	next:
		for _, ev := range evs.Items {
			msgs = append(msgs, ev.Message)
			for _, w := range want {
				if !strings.Contains(ev.Message, w) {
					continue next
				}
			}
			found = ev.Message
			return true, ""
		}
		return false, strings.Join(msgs, " | ")
	})
	return found
}

// TestForgeTokenGoesOnlyWhereItWasMadeFor: whoever edits an Application
// (but cannot read Secrets) points it at their own public repository and
// names, as spec.commitStatus.secretRef, the team's forge token, the
// team's Git credential, or a ServiceAccount token Secret. The Application
// syncs what the repository holds — but no token leaves for the editor's
// host: the forge token is bound to the real forge's host, the Git
// credential is not labelled for a forge, a ServiceAccount token is never
// read. Each refusal is an Event naming the Secret and the cause.
func TestForgeTokenGoesOnlyWhereItWasMadeFor(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	files := map[string]string{}
	for _, name := range []string{"repointed", "satoken", "gitcred"} {
		files[name+"/cm.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: " + name + "}\ndata: {a: b}\n"
	}
	sink := newCredentialSink(t, files)
	const forgeToken = "team-forge-token-0123456789"
	forgeLabel := map[string]string{kv1.CredentialLabel: kv1.CredentialForge}
	for _, s := range []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Name: "forge-token", Namespace: appNS, Labels: forgeLabel,
			Annotations: map[string]string{kv1.GitHostAnnotation: "127.0.0.1"}},
			StringData: map[string]string{kv1.CommitStatusTokenKey: forgeToken}},
		// Even labelled and bound to the editor's host by mistake, a
		// ServiceAccount token Secret is never read.
		{ObjectMeta: metav1.ObjectMeta{Name: "sa-token", Namespace: appNS, Labels: forgeLabel,
			Annotations: map[string]string{kv1.GitHostAnnotation: "localhost", corev1.ServiceAccountNameKey: "default"}},
			Type: corev1.SecretTypeServiceAccountToken},
	} {
		if err := e.admin.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	var saToken string
	waitFor(t, 30*time.Second, "the ServiceAccount token Secret filled in", func() (bool, string) {
		s, err := e.cs.CoreV1().Secrets(appNS).Get(ctx, "sa-token", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		saToken = string(s.Data[corev1.ServiceAccountTokenKey])
		return saToken != "", "no token yet"
	})
	e.startController(time.Hour)
	for name, secret := range map[string]string{"repointed": "forge-token", "satoken": "sa-token", "gitcred": "myapp-git"} {
		app := &kv1.Application{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: appNS},
			Spec: kv1.ApplicationSpec{
				Source:       kv1.ApplicationSource{RepoURL: sink.url, TargetRevision: "main", Path: name},
				SyncPolicy:   &kv1.SyncPolicy{Automated: &kv1.AutomatedSyncPolicy{Prune: true, SelfHeal: true}},
				Interval:     &metav1.Duration{Duration: time.Hour},
				CommitStatus: &kv1.CommitStatus{Provider: kv1.ForgeGitea, SecretRef: kv1.LocalObjectReference{Name: secret}},
			},
		}
		if err := e.admin.Create(ctx, app); err != nil {
			t.Fatal(err)
		}
	}

	e.waitEvent("repointed", controller.ReasonCommitStatusFailed, time.Minute,
		appNS+"/forge-token", `keyless.dev/git-host="127.0.0.1", not for localhost:`)
	e.waitEvent("satoken", controller.ReasonCommitStatusFailed, time.Minute,
		appNS+"/sa-token", "never reads ServiceAccount tokens")
	e.waitEvent("gitcred", controller.ReasonCommitStatusFailed, time.Minute,
		appNS+"/myapp-git", "is not labelled keyless.dev/credential=forge")
	for _, name := range []string{"repointed", "satoken", "gitcred"} {
		e.waitApp(name, "Ready: the sync itself is not refused", 30*time.Second, ready)
	}
	for what, secret := range map[string]string{"forge token": forgeToken, "ServiceAccount token": saToken, "Git credential": gitToken} {
		if sink.received(secret) {
			t.Errorf("the %s reached the editor's server", what)
		}
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if sink.statuses != 0 {
		t.Errorf("%d commit status calls reached the editor's server", sink.statuses)
	}
}

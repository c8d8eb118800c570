package controller_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

// bumpTo is the commit `keyless bump` makes in CI: the Deployment's image
// tag and nothing else.
func (e *env) bumpTo(image string) string {
	e.t.Helper()
	deploy := strings.Replace(manifests("", "")["deploy/deploy.yaml"], "image: \n", "image: "+image+"\n", 1)
	return e.push(map[string]string{"deploy/deploy.yaml": deploy}, nil, "chore(deploy): "+image)
}

// TestPollingAppliesABump: with no webhook, a tag bump is applied at the
// Application's interval.
func TestPollingAppliesABump(t *testing.T) {
	e, _ := seedApp(t, 5*time.Second)
	bump := e.bumpTo("registry.example.com/web:1.1")
	e.waitImage("registry.example.com/web:1.1", 30*time.Second)
	e.waitApp("web", "synced at the bump", 20*time.Second, func(a *kv1.Application) bool {
		return ready(a) && a.Status.LastAppliedRevision == bump
	})
}

// TestWebhookAppliesAPushAtOnce: with an hour's interval, a push is applied
// as soon as the forge's webhook arrives; a webhook with a wrong token or a
// bad signature triggers nothing.
func TestWebhookAppliesAPushAtOnce(t *testing.T) {
	e, _ := seedApp(t, time.Hour)
	bump := e.bumpTo("registry.example.com/web:1.2")
	if code := e.gitlabHook("wrong-token"); code != http.StatusUnauthorized {
		t.Fatalf("gitlab hook with a wrong token: %d, want 401", code)
	}
	if code := e.githubHook("wrong-secret", `{"ref":"refs/heads/main","repository":{"clone_url":"`+e.git.RepoURL(repoName)+`"}}`); code != http.StatusUnauthorized {
		t.Fatalf("github hook with a bad signature: %d, want 401", code)
	}
	time.Sleep(2 * time.Second)
	if img := e.image(); img != "registry.example.com/web:1.0" {
		t.Fatalf("a refused webhook triggered a sync: image %s", img)
	}
	start := time.Now()
	if code := e.gitlabHook(hookSecret); code != http.StatusOK {
		t.Fatalf("gitlab hook: %d", code)
	}
	e.waitImage("registry.example.com/web:1.2", 20*time.Second)
	t.Logf("push → applied via webhook in %s", time.Since(start).Round(time.Millisecond))
	e.waitApp("web", "synced at the pushed commit", 20*time.Second, func(a *kv1.Application) bool {
		return ready(a) && a.Status.LastAppliedRevision == bump
	})
}

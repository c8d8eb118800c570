package controller

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/gitsource"
)

// MaxWebhookBody caps a webhook request body.
const MaxWebhookBody = 1 << 20

// WebhookReceiver turns GitHub and GitLab push events into immediate syncs of
// the Applications that track the pushed repository and branch.
type WebhookReceiver struct {
	Client client.Reader
	Source *gitsource.Source
	// Secret is the shared secret: GitHub's HMAC key, GitLab's token.
	Secret []byte
	// Trigger receives the Applications to reconcile now.
	Trigger chan<- event.GenericEvent
}

// pushEvent is what keyless reads of a push: the repository URLs and the ref.
type pushEvent struct {
	Ref      string
	RepoURLs []string
	IsPush   bool
}

// ServeHTTP routes /hooks/github and /hooks/gitlab.
func (w *WebhookReceiver) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		http.Error(rw, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(rw, req.Body, MaxWebhookBody))
	if err != nil {
		http.Error(rw, "body too large or unreadable", http.StatusRequestEntityTooLarge)
		return
	}
	var ev pushEvent
	switch req.URL.Path {
	case "/hooks/github":
		if !w.validGitHub(req.Header.Get("X-Hub-Signature-256"), body) {
			http.Error(rw, "bad signature", http.StatusUnauthorized)
			return
		}
		ev, err = parseGitHub(req.Header.Get("X-GitHub-Event"), body)
	case "/hooks/gitlab":
		if subtle.ConstantTimeCompare([]byte(req.Header.Get("X-Gitlab-Token")), w.Secret) != 1 || len(w.Secret) == 0 {
			http.Error(rw, "bad token", http.StatusUnauthorized)
			return
		}
		ev, err = parseGitLab(req.Header.Get("X-Gitlab-Event"), body)
	default:
		http.NotFound(rw, req)
		return
	}
	if err != nil {
		http.Error(rw, "malformed event: "+err.Error(), http.StatusBadRequest)
		return
	}
	if !ev.IsPush {
		rw.WriteHeader(http.StatusNoContent)
		return
	}
	n, err := w.trigger(req.Context(), ev)
	if err != nil {
		http.Error(rw, "cannot list applications", http.StatusInternalServerError)
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	_, _ = fmt.Fprintf(rw, "{\"triggered\":%d}\n", n)
}

func (w *WebhookReceiver) validGitHub(header string, body []byte) bool {
	sig, ok := strings.CutPrefix(header, "sha256=")
	if !ok || len(w.Secret) == 0 {
		return false
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, w.Secret)
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

func parseGitHub(kind string, body []byte) (pushEvent, error) {
	var p struct {
		Ref        string `json:"ref"`
		Repository *struct {
			CloneURL string `json:"clone_url"`
			HTMLURL  string `json:"html_url"`
			SSHURL   string `json:"ssh_url"`
			GitURL   string `json:"git_url"`
		} `json:"repository"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return pushEvent{}, err
	}
	if kind != "push" {
		return pushEvent{}, nil
	}
	if p.Repository == nil || p.Ref == "" {
		return pushEvent{}, errors.New("push event without ref or repository")
	}
	return pushEvent{IsPush: true, Ref: p.Ref, RepoURLs: []string{p.Repository.CloneURL, p.Repository.HTMLURL, p.Repository.SSHURL, p.Repository.GitURL}}, nil
}

func parseGitLab(kind string, body []byte) (pushEvent, error) {
	var p struct {
		ObjectKind string `json:"object_kind"`
		Ref        string `json:"ref"`
		Project    *struct {
			HTTPURL string `json:"git_http_url"`
			SSHURL  string `json:"git_ssh_url"`
			WebURL  string `json:"web_url"`
		} `json:"project"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return pushEvent{}, err
	}
	if p.ObjectKind != "push" && p.ObjectKind != "tag_push" && kind != "Push Hook" && kind != "Tag Push Hook" {
		return pushEvent{}, nil
	}
	if p.Project == nil || p.Ref == "" {
		return pushEvent{}, errors.New("push event without ref or project")
	}
	return pushEvent{IsPush: true, Ref: p.Ref, RepoURLs: []string{p.Project.HTTPURL, p.Project.SSHURL, p.Project.WebURL}}, nil
}

// trigger enqueues every Application tracking one of ev's URLs at ev's ref.
func (w *WebhookReceiver) trigger(ctx context.Context, ev pushEvent) (int, error) {
	wanted := map[string]bool{}
	for _, u := range ev.RepoURLs {
		if u != "" {
			wanted[normalizeRepoURL(u)] = true
		}
	}
	apps := &kv1.ApplicationList{}
	if err := w.Client.List(ctx, apps); err != nil {
		return 0, err
	}
	n := 0
	for i := range apps.Items {
		app := &apps.Items[i]
		if !wanted[normalizeRepoURL(app.Spec.Source.RepoURL)] || !refMatches(app.Spec.Source.TargetRevision, ev.Ref) {
			continue
		}
		w.Source.Invalidate(app.Spec.Source.RepoURL)
		select {
		case w.Trigger <- event.GenericEvent{Object: app}:
			n++
		case <-time.After(5 * time.Second):
			log.FromContext(ctx).Info("webhook trigger queue full", "app", app.Name)
		}
	}
	return n, nil
}

// refMatches reports whether a push to ref concerns targetRevision.
func refMatches(targetRevision, ref string) bool {
	if targetRevision == "" || targetRevision == "HEAD" {
		return true // the default branch; the ls-remote tells whether it moved
	}
	return ref == targetRevision || ref == "refs/heads/"+targetRevision || ref == "refs/tags/"+targetRevision
}

// normalizeRepoURL makes https/ssh/scp-like URLs of one repository comparable:
// host and path, lower-case host, no ".git", no trailing slash, no user.
func normalizeRepoURL(raw string) string {
	s := strings.TrimSpace(raw)
	if !strings.Contains(s, "://") {
		if at := strings.Index(s, "@"); at >= 0 {
			if colon := strings.Index(s[at:], ":"); colon >= 0 {
				s = "ssh://" + s[:at+colon] + "/" + s[at+colon+1:]
			}
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		return strings.ToLower(s)
	}
	host := strings.ToLower(u.Hostname())
	path := strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), ".git")
	return host + "/" + strings.TrimPrefix(path, "/")
}

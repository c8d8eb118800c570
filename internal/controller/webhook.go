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
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/gitsource"
)

// MaxWebhookBody caps a webhook request body.
const MaxWebhookBody = 1 << 20

// NamespaceWebhookSecret is the Secret, in a managed namespace, whose keys
// (NamespaceWebhookGitHubKey, NamespaceWebhookGitLabKey) verify pushes
// posted to /hooks/github/<namespace> and /hooks/gitlab/<namespace>; such a
// push triggers that namespace's Applications only.
const (
	NamespaceWebhookSecret    = "keyless-webhook"
	NamespaceWebhookGitHubKey = "github"
	NamespaceWebhookGitLabKey = "gitlab"
)

// WebhookReceiver turns GitHub and GitLab push events into immediate syncs of
// the Applications that track the pushed repository and branch.
type WebhookReceiver struct {
	Client client.Reader
	// Secrets reads a namespace's NamespaceWebhookSecret (uncached).
	Secrets client.Reader
	Source  *gitsource.Source
	// GitHubSecret is the controller-wide HMAC key of /hooks/github and
	// GitLabToken the controller-wide token of /hooks/gitlab; separate, and
	// either may be empty (that path then answers 401).
	GitHubSecret, GitLabToken []byte
	// Namespaces are the managed namespaces: the only ones a
	// /hooks/<forge>/<namespace> path may name.
	Namespaces []string
	// Trigger receives the Applications to reconcile now.
	Trigger chan<- event.GenericEvent

	seen deliveries
}

// pushEvent is what keyless reads of a push: the repository URLs and the ref.
type pushEvent struct {
	Ref      string
	RepoURLs []string
	IsPush   bool
}

// ServeHTTP routes /hooks/github and /hooks/gitlab (every managed
// namespace) and /hooks/github/<ns> and /hooks/gitlab/<ns> (that namespace,
// verified with its own keyless-webhook Secret).
func (w *WebhookReceiver) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		http.Error(rw, "POST only", http.StatusMethodNotAllowed)
		return
	}
	forge, namespace, ok := w.route(req.URL.Path)
	if !ok {
		http.NotFound(rw, req)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(rw, req.Body, MaxWebhookBody))
	if err != nil {
		http.Error(rw, "body too large or unreadable", http.StatusRequestEntityTooLarge)
		return
	}
	key, err := w.key(req.Context(), forge, namespace)
	if err != nil {
		http.Error(rw, "webhook not configured", http.StatusUnauthorized)
		return
	}
	var ev pushEvent
	var delivery string
	switch forge {
	case NamespaceWebhookGitHubKey:
		if !validGitHub(key, req.Header.Get("X-Hub-Signature-256"), body) {
			http.Error(rw, "bad signature", http.StatusUnauthorized)
			return
		}
		delivery = req.Header.Get("X-GitHub-Delivery")
		ev, err = parseGitHub(req.Header.Get("X-GitHub-Event"), body)
	default:
		if len(key) == 0 || subtle.ConstantTimeCompare([]byte(req.Header.Get("X-Gitlab-Token")), key) != 1 {
			http.Error(rw, "bad token", http.StatusUnauthorized)
			return
		}
		delivery = req.Header.Get("X-Gitlab-Event-UUID")
		if delivery == "" {
			delivery = req.Header.Get("Idempotency-Key")
		}
		ev, err = parseGitLab(req.Header.Get("X-Gitlab-Event"), body)
	}
	if err != nil {
		http.Error(rw, "malformed event: "+err.Error(), http.StatusBadRequest)
		return
	}
	if delivery != "" && w.seen.repeated(forge+"/"+namespace+"/"+delivery) {
		rw.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintln(rw, `{"triggered":0,"duplicate":true}`)
		return
	}
	if !ev.IsPush {
		rw.WriteHeader(http.StatusNoContent)
		return
	}
	n, err := w.trigger(req.Context(), ev, namespace)
	if err != nil {
		http.Error(rw, "cannot list applications", http.StatusInternalServerError)
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	_, _ = fmt.Fprintf(rw, "{\"triggered\":%d}\n", n)
}

// route splits /hooks/<forge>[/<namespace>]; a namespace must be managed.
func (w *WebhookReceiver) route(path string) (forge, namespace string, ok bool) {
	rest, ok := strings.CutPrefix(path, "/hooks/")
	if !ok {
		return "", "", false
	}
	forge, namespace, _ = strings.Cut(rest, "/")
	if forge != NamespaceWebhookGitHubKey && forge != NamespaceWebhookGitLabKey {
		return "", "", false
	}
	if namespace != "" && !slices.Contains(w.Namespaces, namespace) {
		return "", "", false
	}
	return forge, namespace, true
}

// key returns the secret that verifies forge's requests for namespace ("":
// the controller-wide one).
func (w *WebhookReceiver) key(ctx context.Context, forge, namespace string) ([]byte, error) {
	if namespace == "" {
		if forge == NamespaceWebhookGitHubKey {
			return w.GitHubSecret, nil
		}
		return w.GitLabToken, nil
	}
	if w.Secrets == nil {
		return nil, errors.New("no Secret reader")
	}
	sec := &corev1.Secret{}
	if err := w.Secrets.Get(ctx, client.ObjectKey{Namespace: namespace, Name: NamespaceWebhookSecret}, sec); err != nil {
		return nil, err
	}
	key := sec.Data[forge]
	if err := CheckWebhookSecret(key); err != nil {
		return nil, err
	}
	return key, nil
}

// deliveries remembers recent delivery IDs (bounded), so a redelivered or
// replayed event triggers nothing.
type deliveries struct {
	mu   sync.Mutex
	ids  map[string]time.Time
	keep time.Duration
}

const maxDeliveries = 4096

func (d *deliveries) repeated(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	if d.ids == nil {
		d.ids = map[string]time.Time{}
	}
	if d.keep == 0 {
		d.keep = time.Hour
	}
	if at, ok := d.ids[id]; ok && now.Sub(at) < d.keep {
		return true
	}
	if len(d.ids) >= maxDeliveries {
		for k, at := range d.ids {
			if now.Sub(at) >= d.keep || len(d.ids) >= maxDeliveries {
				delete(d.ids, k)
			}
		}
	}
	d.ids[id] = now
	return false
}

// placeholderWebhookSecret is the value shipped in config/install.
const placeholderWebhookSecret = "change-me-to-a-random-32-byte-value"

// ErrWeakWebhookSecret is returned (wrapped) for a webhook secret that is the
// shipped placeholder or too guessable.
var ErrWeakWebhookSecret = errors.New("weak webhook secret")

// CheckWebhookSecret refuses the shipped placeholder and secrets with too
// little entropy (under 16 bytes, or under about 64 bits by their letters).
func CheckWebhookSecret(secret []byte) error {
	const how = "generate one with `openssl rand -hex 32` and configure the same value in GitLab/GitHub"
	switch {
	case len(secret) == 0:
		return fmt.Errorf("the webhook secret is empty; %s: %w", how, ErrWeakWebhookSecret)
	case string(secret) == placeholderWebhookSecret:
		return fmt.Errorf("the webhook secret is still the placeholder shipped in config/install; %s: %w", how, ErrWeakWebhookSecret)
	case len(secret) < 16:
		return fmt.Errorf("the webhook secret is %d bytes, fewer than 16; %s: %w", len(secret), how, ErrWeakWebhookSecret)
	case entropyBits(secret) < 64:
		return fmt.Errorf("the webhook secret is too guessable (about %.0f bits); %s: %w", entropyBits(secret), how, ErrWeakWebhookSecret)
	}
	return nil
}

// entropyBits estimates a secret's entropy from its letter frequencies.
func entropyBits(b []byte) float64 {
	counts := map[byte]int{}
	for _, c := range b {
		counts[c]++
	}
	var h float64
	for _, n := range counts {
		p := float64(n) / float64(len(b))
		h -= p * math.Log2(p)
	}
	return h * float64(len(b))
}

func validGitHub(key []byte, header string, body []byte) bool {
	sig, ok := strings.CutPrefix(header, "sha256=")
	if !ok || len(key) == 0 {
		return false
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, key)
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

// trigger enqueues every Application (of namespace, or of every managed
// namespace when "") tracking one of ev's URLs at ev's ref.
func (w *WebhookReceiver) trigger(ctx context.Context, ev pushEvent, namespace string) (int, error) {
	wanted := map[string]bool{}
	for _, u := range ev.RepoURLs {
		if u != "" {
			wanted[normalizeRepoURL(u)] = true
		}
	}
	apps := &kv1.ApplicationList{}
	var opts []client.ListOption
	if namespace != "" {
		opts = append(opts, client.InNamespace(namespace))
	}
	if err := w.Client.List(ctx, apps, opts...); err != nil {
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

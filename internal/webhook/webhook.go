// Package webhook receives GitHub and GitLab push events: it routes
// /hooks/<forge>[/<namespace>], verifies each request (GitHub's HMAC
// signature, GitLab's token) with a key its caller supplies, bounds the body,
// drops redelivered events and hands each push to a trigger function. It
// knows nothing of Applications or the cluster.
package webhook

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
)

// MaxBody caps a webhook request body.
const MaxBody = 1 << 20

// Forges, as they appear in /hooks/<forge> paths (and as the keys of a
// namespace's webhook Secret).
const (
	GitHub = "github"
	GitLab = "gitlab"
)

// Receiver turns GitHub and GitLab push events into calls of Trigger.
type Receiver struct {
	// Key returns the secret that verifies forge's requests for namespace
	// ("": the controller-wide one). An error or an empty key answers 401.
	Key func(ctx context.Context, forge, namespace string) ([]byte, error)
	// Namespaces are the managed namespaces: the only ones a
	// /hooks/<forge>/<namespace> path may name.
	Namespaces []string
	// Trigger syncs what tracks one of the event's repositories at its ref,
	// in namespace (or every managed namespace when ""), and returns how
	// many it triggered.
	Trigger func(ctx context.Context, ev PushEvent, namespace string) (int, error)

	seen deliveries
}

// PushEvent is what keyless reads of a push: the repository URLs and the ref.
type PushEvent struct {
	Ref      string
	RepoURLs []string
	IsPush   bool
}

// ServeHTTP routes /hooks/github and /hooks/gitlab (every managed
// namespace) and /hooks/github/<ns> and /hooks/gitlab/<ns> (that namespace,
// verified with its own keyless-webhook Secret).
func (w *Receiver) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		http.Error(rw, "POST only", http.StatusMethodNotAllowed)
		return
	}
	forge, namespace, ok := w.route(req.URL.Path)
	if !ok {
		http.NotFound(rw, req)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(rw, req.Body, MaxBody))
	if err != nil {
		http.Error(rw, "body too large or unreadable", http.StatusRequestEntityTooLarge)
		return
	}
	key, err := w.Key(req.Context(), forge, namespace)
	if err != nil || len(key) == 0 {
		http.Error(rw, "webhook not configured", http.StatusUnauthorized)
		return
	}
	var ev PushEvent
	var delivery string
	switch forge {
	case GitHub:
		if !validGitHub(key, req.Header.Get("X-Hub-Signature-256"), body) {
			http.Error(rw, "bad signature", http.StatusUnauthorized)
			return
		}
		delivery = req.Header.Get("X-GitHub-Delivery")
		ev, err = parseGitHub(req.Header.Get("X-GitHub-Event"), body)
	default:
		if subtle.ConstantTimeCompare([]byte(req.Header.Get("X-Gitlab-Token")), key) != 1 {
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
	n, err := w.Trigger(req.Context(), ev, namespace)
	if err != nil {
		http.Error(rw, "cannot trigger", http.StatusInternalServerError)
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	_, _ = fmt.Fprintf(rw, "{\"triggered\":%d}\n", n)
}

// route splits /hooks/<forge>[/<namespace>]; a namespace must be managed.
func (w *Receiver) route(path string) (forge, namespace string, ok bool) {
	rest, ok := strings.CutPrefix(path, "/hooks/")
	if !ok {
		return "", "", false
	}
	forge, namespace, _ = strings.Cut(rest, "/")
	if forge != GitHub && forge != GitLab {
		return "", "", false
	}
	if namespace != "" && !slices.Contains(w.Namespaces, namespace) {
		return "", "", false
	}
	return forge, namespace, true
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

// PlaceholderSecret is the value shipped in config/install.
const PlaceholderSecret = "change-me-to-a-random-32-byte-value"

// ErrWeakSecret is returned (wrapped) for a webhook secret that is the
// shipped placeholder or too guessable.
var ErrWeakSecret = errors.New("weak webhook secret")

// CheckSecret refuses the shipped placeholder and secrets with too
// little entropy (under 16 bytes, or under about 64 bits by their letters).
func CheckSecret(secret []byte) error {
	const how = "generate one with `openssl rand -hex 32` and configure the same value in GitLab/GitHub"
	switch {
	case len(secret) == 0:
		return fmt.Errorf("the webhook secret is empty; %s: %w", how, ErrWeakSecret)
	case string(secret) == PlaceholderSecret:
		return fmt.Errorf("the webhook secret is still the placeholder shipped in config/install; %s: %w", how, ErrWeakSecret)
	case len(secret) < 16:
		return fmt.Errorf("the webhook secret is %d bytes, fewer than 16; %s: %w", len(secret), how, ErrWeakSecret)
	case entropyBits(secret) < 64:
		return fmt.Errorf("the webhook secret is too guessable (about %.0f bits); %s: %w", entropyBits(secret), how, ErrWeakSecret)
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

func parseGitHub(kind string, body []byte) (PushEvent, error) {
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
		return PushEvent{}, err
	}
	if kind != "push" {
		return PushEvent{}, nil
	}
	if p.Repository == nil || p.Ref == "" {
		return PushEvent{}, errors.New("push event without ref or repository")
	}
	return PushEvent{IsPush: true, Ref: p.Ref, RepoURLs: []string{p.Repository.CloneURL, p.Repository.HTMLURL, p.Repository.SSHURL, p.Repository.GitURL}}, nil
}

func parseGitLab(kind string, body []byte) (PushEvent, error) {
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
		return PushEvent{}, err
	}
	if p.ObjectKind != "push" && p.ObjectKind != "tag_push" && kind != "Push Hook" && kind != "Tag Push Hook" {
		return PushEvent{}, nil
	}
	if p.Project == nil || p.Ref == "" {
		return PushEvent{}, errors.New("push event without ref or project")
	}
	return PushEvent{IsPush: true, Ref: p.Ref, RepoURLs: []string{p.Project.HTTPURL, p.Project.SSHURL, p.Project.WebURL}}, nil
}

// RefMatches reports whether a push to ref concerns targetRevision.
func RefMatches(targetRevision, ref string) bool {
	if targetRevision == "" || targetRevision == "HEAD" {
		return true // the default branch; the ls-remote tells whether it moved
	}
	return ref == targetRevision || ref == "refs/heads/"+targetRevision || ref == "refs/tags/"+targetRevision
}

// NormalizeRepoURL makes https/ssh/scp-like URLs of one repository comparable:
// host and path, lower-case host, no ".git", no trailing slash, no user.
func NormalizeRepoURL(raw string) string {
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

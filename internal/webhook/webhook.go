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

	"golang.org/x/time/rate"
)

// MaxBody caps a webhook request body.
const MaxBody = 1 << 20

// Forges, as they appear in /hooks/<forge> paths (and as the keys of a
// namespace's webhook Secret).
const (
	GitHub = "github"
	GitLab = "gitlab"
)

// The headers that authenticate a request, checked for form before anything
// else is read or looked up.
const (
	// GitHubSignatureHeader carries "sha256=" and the body's HMAC-SHA256 in
	// hex (GitHub, and Gitea's GitHub-compatible hooks).
	GitHubSignatureHeader = "X-Hub-Signature-256"
	// GitLabTokenHeader carries GitLab's secret token itself.
	GitLabTokenHeader = "X-Gitlab-Token"
	// MaxTokenLen bounds an X-Gitlab-Token; a longer one is refused unread.
	MaxTokenLen = 512
)

// MsgUnauthorized is the one answer (401) to every request that is not
// authenticated: an unmanaged namespace, a namespace without a key, a
// missing, malformed or wrong signature or token. Nothing in it, nor in the
// status, tells which namespaces are managed or have a key.
const MsgUnauthorized = "webhook not configured, or signature or token missing or wrong"

// Receiver turns GitHub and GitLab push events into calls of Trigger.
//
// A request is checked in this order, each step before anything costlier:
// method, route, the form of its signature or token header, a free slot
// (MaxConcurrent), its source's rate (SourceRate), the route's key, GitLab's
// token, and only then its body is read (MaxBody), GitHub's signature
// verified, the event parsed and checked against the deliveries and bodies
// of the last hour, and Trigger called. Zero limits take their defaults on
// the first request.
type Receiver struct {
	// Key returns the secret that verifies forge's requests for namespace
	// ("": the controller-wide one). An error or an empty key answers 401.
	// It is called only for a managed namespace and a well-formed header.
	Key func(ctx context.Context, forge, namespace string) ([]byte, error)
	// Namespaces are the managed namespaces: the only ones a
	// /hooks/<forge>/<namespace> path may name.
	Namespaces []string
	// Trigger syncs what tracks one of the event's repositories at its ref,
	// in namespace (or every managed namespace when ""), and returns how
	// many it triggered.
	Trigger func(ctx context.Context, ev PushEvent, namespace string) (int, error)

	// MaxConcurrent bounds the requests past the header checks at once: a
	// key lookup, a body read, a verification or a trigger each holds one.
	// One more is answered 503 with Retry-After, its body unread. At most
	// MaxConcurrent × MaxBody of bodies is held. Default
	// DefaultMaxConcurrent (32).
	MaxConcurrent int
	// SourceRate and SourceBurst are each source's token bucket (an IPv4
	// address, an IPv6 /64): a request takes a token before its key is read
	// from the cluster (a namespace's route) or its body is read to be
	// verified (GitHub); without one it is answered 429 with Retry-After,
	// its body unread. /hooks/gitlab is compared with the controller-wide
	// token before anything is read, so it takes none. Defaults
	// DefaultSourceRate (10/s) and DefaultSourceBurst (20).
	SourceRate  rate.Limit
	SourceBurst int
	// MaxSources bounds the sources remembered; past it, buckets refilled
	// to full are forgotten, and new sources share one bucket while every
	// remembered one is still in use. Default DefaultMaxSources (4096).
	MaxSources int

	once    sync.Once
	slots   chan struct{}
	sources *sources
	seen    deliveries
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
	w.init()
	if req.Method != http.MethodPost {
		refuse(rw, http.StatusMethodNotAllowed, "POST only")
		return
	}
	forge, namespace, managed, ok := w.route(req.URL.Path)
	if !ok {
		refuse(rw, http.StatusNotFound, "404 page not found")
		return
	}
	if !wellFormed(forge, req.Header) {
		refuse(rw, http.StatusUnauthorized, MsgUnauthorized)
		return
	}
	select {
	case w.slots <- struct{}{}:
		defer func() { <-w.slots }()
	default:
		rw.Header().Set("Retry-After", retryAfter)
		refuse(rw, http.StatusServiceUnavailable, "too many webhook requests at once; retry later")
		return
	}
	// Managed or not, a namespace's route costs a token: a source out of
	// them cannot tell one from the other either.
	if (namespace != "" || forge == GitHub) && !w.sources.allow(sourceOf(req.RemoteAddr), time.Now()) {
		rw.Header().Set("Retry-After", retryAfter)
		refuse(rw, http.StatusTooManyRequests, "too many webhook requests from this address; retry later")
		return
	}
	if !managed {
		refuse(rw, http.StatusUnauthorized, MsgUnauthorized)
		return
	}
	w.serveAuthenticated(rw, req, forge, namespace)
}

// serveAuthenticated looks the route's key up, authenticates the request,
// reads its body and triggers its push.
func (w *Receiver) serveAuthenticated(rw http.ResponseWriter, req *http.Request, forge, namespace string) {
	key, err := w.Key(req.Context(), forge, namespace)
	if err != nil || len(key) == 0 {
		refuse(rw, http.StatusUnauthorized, MsgUnauthorized)
		return
	}
	if forge == GitLab && subtle.ConstantTimeCompare([]byte(req.Header.Get(GitLabTokenHeader)), key) != 1 {
		refuse(rw, http.StatusUnauthorized, MsgUnauthorized)
		return
	}
	if req.ContentLength > MaxBody {
		refuse(rw, http.StatusRequestEntityTooLarge, "body over 1 MiB")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(rw, req.Body, MaxBody))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		refuse(rw, http.StatusRequestEntityTooLarge, "body over 1 MiB")
		return
	case err != nil:
		refuse(rw, http.StatusBadRequest, "body unreadable")
		return
	}
	var ev PushEvent
	var replay []string
	switch forge {
	case GitHub:
		if !validGitHub(key, req.Header.Get(GitHubSignatureHeader), body) {
			refuse(rw, http.StatusUnauthorized, MsgUnauthorized)
			return
		}
		// The signature covers the body, so the body itself identifies a
		// replay, whatever delivery ID comes with it.
		sum := sha256.Sum256(body)
		replay = append(replay, "sha256:"+hex.EncodeToString(sum[:]))
		replay = withDelivery(replay, req.Header.Get("X-GitHub-Delivery"))
		ev, err = parseGitHub(req.Header.Get("X-GitHub-Event"), body)
	default:
		delivery := req.Header.Get("X-Gitlab-Event-UUID")
		if delivery == "" {
			delivery = req.Header.Get("Idempotency-Key")
		}
		replay = withDelivery(replay, delivery)
		ev, err = parseGitLab(req.Header.Get("X-Gitlab-Event"), body)
	}
	if err != nil {
		http.Error(rw, "malformed event: "+err.Error(), http.StatusBadRequest)
		return
	}
	if w.seen.repeated(time.Now(), forge+"/"+namespace+"/", replay...) {
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

// withDelivery adds a delivery ID, when the forge sent one, to what
// identifies a replay.
func withDelivery(ids []string, delivery string) []string {
	if delivery == "" {
		return ids
	}
	return append(ids, "delivery:"+delivery)
}

// route splits /hooks/<forge>[/<namespace>]; ok is false for another path
// or forge, managed for a namespace that is not managed. An unmanaged
// namespace is answered as a managed one without a key, after the same
// checks.
func (w *Receiver) route(path string) (forge, namespace string, managed, ok bool) {
	rest, ok := strings.CutPrefix(path, "/hooks/")
	if !ok {
		return "", "", false, false
	}
	forge, namespace, _ = strings.Cut(rest, "/")
	if forge != GitHub && forge != GitLab {
		return "", "", false, false
	}
	return forge, namespace, namespace == "" || slices.Contains(w.Namespaces, namespace), true
}

// wellFormed reports whether the request carries forge's authentication
// header in its form: GitHub's "sha256=" and 64 hex digits, GitLab's token
// non-empty and at most MaxTokenLen bytes.
func wellFormed(forge string, h http.Header) bool {
	if forge == GitLab {
		token := h.Get(GitLabTokenHeader)
		return token != "" && len(token) <= MaxTokenLen
	}
	sig, ok := strings.CutPrefix(h.Get(GitHubSignatureHeader), "sha256=")
	if !ok || len(sig) != hex.EncodedLen(sha256.Size) {
		return false
	}
	_, err := hex.DecodeString(sig)
	return err == nil
}

// refuse answers code and msg and closes the connection, so that the
// server does not read (up to 256 KiB of) a body nobody wants before
// answering.
func refuse(rw http.ResponseWriter, code int, msg string) {
	rw.Header().Set("Connection", "close")
	http.Error(rw, msg, code)
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

// Package forge sets commit statuses at Git forges: Gitea and Forgejo
// (/api/v1), GitHub (REST v3) and GitLab (REST v4). It knows nothing of
// Applications: the controller decides the state, this package sends it.
package forge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/egress"
)

// State is a commit status state in keyless's words; each client maps it
// to its forge's.
type State string

// States.
const (
	StatePending State = "pending"
	StateSuccess State = "success"
	StateFailure State = "failure"
)

// MaxDescription is the longest description sent (GitHub's limit is 140 characters).
const MaxDescription = 140

// ErrConfig is a commitStatus configuration that cannot work (unknown
// provider, an API URL off the repository's host, a repository URL with no
// owner/name): only a spec change fixes it.
var ErrConfig = errors.New("commit status configuration")

// Status is one commit status to set.
type Status struct {
	SHA         string
	State       State
	Context     string
	Description string
	TargetURL   string
}

// Client sets commit statuses on one repository.
type Client struct {
	provider string
	api      *url.URL
	// project is owner/name (GitLab: the full group path).
	project string
	token   string
	http    *http.Client
}

// Options configure New.
type Options struct {
	// Provider is kv1.ForgeGitea, ForgeForgejo, ForgeGitHub or ForgeGitLab.
	Provider string
	// RepoURL is the repository (https://, ssh:// or scp-like).
	RepoURL string
	// APIURL overrides the API base derived from RepoURL; it must be on the
	// repository's host.
	APIURL string
	// Token authenticates (never logged, never in an error).
	Token string
	// AllowInsecureHTTP lets the API be reached over http://.
	AllowInsecureHTTP bool
	// HTTP is the client requests go through (egress.NewClient).
	HTTP *http.Client
}

// New returns the client for opts, checking the API URL is confined to the
// repository's host.
func New(opts Options) (*Client, error) {
	repo, err := parseRepoURL(opts.RepoURL)
	if err != nil {
		return nil, err
	}
	apiURL := opts.APIURL
	if apiURL == "" {
		apiURL, err = defaultAPIURL(opts.Provider, repo)
		if err != nil {
			return nil, err
		}
	}
	api, err := egress.CheckURL("spec.commitStatus.apiURL", apiURL, opts.AllowInsecureHTTP)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if !sameHost(opts.Provider, api, repo) {
		return nil, fmt.Errorf("%w: spec.commitStatus.apiURL host %q is not the repository's host and port %q: a token is only sent to the forge that holds the repository", ErrConfig, api.Host, repo.host+repo.portSuffix())
	}
	if opts.HTTP == nil {
		return nil, fmt.Errorf("%w: no HTTP client", ErrConfig)
	}
	return &Client{provider: opts.Provider, api: api, project: repo.path, token: opts.Token, http: opts.HTTP}, nil
}

// Set sends s. Errors are *egress.StatusError for a refused request.
func (c *Client) Set(ctx context.Context, s Status) error {
	if !isSHA(s.SHA) {
		return fmt.Errorf("%w: %q is not a commit SHA", ErrConfig, s.SHA)
	}
	s.Description = truncate(s.Description, MaxDescription)
	var (
		path string
		body any
	)
	switch c.provider {
	case kv1.ForgeGitea, kv1.ForgeForgejo, kv1.ForgeGitHub:
		path = "/repos/" + c.project + "/statuses/" + s.SHA
		body = giteaStatus{State: string(s.State), TargetURL: s.TargetURL, Description: s.Description, Context: s.Context}
	case kv1.ForgeGitLab:
		path = "/projects/" + url.PathEscape(c.project) + "/statuses/" + s.SHA
		body = gitlabStatus{State: gitlabState(s.State), Name: s.Context, TargetURL: s.TargetURL, Description: s.Description}
	default:
		return fmt.Errorf("%w: unknown provider %q", ErrConfig, c.provider)
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	u := c.api.JoinPath()
	u.RawPath = strings.TrimSuffix(c.api.EscapedPath(), "/") + path
	u.Path, _ = url.PathUnescape(u.RawPath)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "keyless")
	c.authorize(req)
	_, err = egress.Do(ctx, c.http, req)
	var se *egress.StatusError
	if errors.As(err, &se) {
		// Only the status code: whatever the server answered is not echoed
		// into the Application's Events (the host is a tenant's choice).
		err = &egress.StatusError{Code: se.Code}
	}
	if err != nil {
		return fmt.Errorf("setting %s status on %s at %s: %w", s.State, kv1.ShortSHA(s.SHA), c.api.Host, err)
	}
	return nil
}

// authorize adds the forge's documented token header.
func (c *Client) authorize(req *http.Request) {
	switch c.provider {
	case kv1.ForgeGitLab:
		req.Header.Set("PRIVATE-TOKEN", c.token)
	case kv1.ForgeGitHub:
		req.Header.Set("Authorization", "Bearer "+c.token)
		req.Header.Set("Accept", "application/vnd.github+json")
		req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	default:
		req.Header.Set("Authorization", "token "+c.token)
	}
}

// giteaStatus is the body of Gitea's/Forgejo's CreateStatusOption and
// GitHub's "create a commit status" (same field names).
type giteaStatus struct {
	State       string `json:"state"`
	TargetURL   string `json:"target_url,omitempty"`
	Description string `json:"description,omitempty"`
	Context     string `json:"context"`
}

// gitlabStatus is the body of GitLab's POST /projects/:id/statuses/:sha.
type gitlabStatus struct {
	State       string `json:"state"`
	Name        string `json:"name"`
	TargetURL   string `json:"target_url,omitempty"`
	Description string `json:"description,omitempty"`
}

// gitlabState maps to GitLab's pending, running, success, failed, canceled.
func gitlabState(s State) string {
	if s == StateFailure {
		return "failed"
	}
	return string(s)
}

func isSHA(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// truncate cuts s to at most n characters on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

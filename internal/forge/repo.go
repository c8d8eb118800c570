package forge

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

// repository is a repoURL's host and project path (owner/name, or GitLab's
// group/subgroup/name), without .git.
type repository struct {
	scheme string // https, http or ssh
	host   string // hostname, no port
	port   string
	path   string
}

// portSuffix is ":port" when the URL names one.
func (r repository) portSuffix() string {
	if r.port == "" {
		return ""
	}
	return ":" + r.port
}

// segment is one path element a forge accepts in an owner or repository name.
var segment = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,100}$`)

// parseRepoURL reads https://host/owner/repo(.git), ssh://git@host[:port]/owner/repo(.git)
// and git@host:owner/repo(.git).
func parseRepoURL(raw string) (repository, error) {
	var r repository
	var p string
	switch {
	case strings.Contains(raw, "://"):
		u, err := url.Parse(raw)
		if err != nil {
			return r, fmt.Errorf("%w: spec.source.repoURL: %w", ErrConfig, err)
		}
		r.scheme, r.host, r.port, p = u.Scheme, u.Hostname(), u.Port(), u.Path
	default:
		at := strings.Index(raw, "@")
		colon := strings.Index(raw, ":")
		if at < 0 || colon < at {
			return r, fmt.Errorf("%w: spec.source.repoURL %q is not a URL", ErrConfig, raw)
		}
		r.scheme, r.host, p = "ssh", raw[at+1:colon], raw[colon+1:]
	}
	p = strings.TrimSuffix(strings.Trim(p, "/"), ".git")
	parts := strings.Split(p, "/")
	if len(parts) < 2 || r.host == "" {
		return r, fmt.Errorf("%w: spec.source.repoURL %q names no owner/repository", ErrConfig, raw)
	}
	for _, s := range parts {
		if !segment.MatchString(s) || s == "." || s == ".." {
			return r, fmt.Errorf("%w: spec.source.repoURL %q has a path element %q a forge does not accept", ErrConfig, raw, s)
		}
	}
	r.path = strings.Join(parts, "/")
	return r, nil
}

// defaultAPIURL derives the API base from the repository's URL.
func defaultAPIURL(provider string, r repository) (string, error) {
	scheme := r.scheme
	host := r.host
	if scheme == "ssh" {
		// The SSH port says nothing of the HTTP one: assume https on 443.
		scheme = "https"
	} else if r.port != "" {
		host = r.host + ":" + r.port
	}
	switch provider {
	case kv1.ForgeGitHub:
		if r.host == "github.com" {
			return "https://api.github.com", nil
		}
		return scheme + "://" + host + "/api/v3", nil
	case kv1.ForgeGitLab:
		return scheme + "://" + host + "/api/v4", nil
	case kv1.ForgeGitea, kv1.ForgeForgejo:
		return scheme + "://" + host + "/api/v1", nil
	}
	return "", fmt.Errorf("%w: unknown provider %q (gitea, forgejo, github or gitlab)", ErrConfig, provider)
}

// sameHost reports whether the API may receive the repository's token:
// the repository's own host and port (the scheme's default when none is
// written; for an SSH repository, whose port says nothing of the HTTP one,
// any port of its host), or api.github.com for github.com.
func sameHost(provider string, api *url.URL, r repository) bool {
	if provider == kv1.ForgeGitHub && strings.EqualFold(r.host, "github.com") && strings.EqualFold(api.Hostname(), "api.github.com") {
		return true
	}
	if !strings.EqualFold(api.Hostname(), r.host) {
		return false
	}
	return r.scheme == "ssh" || portOf(api.Scheme, api.Port()) == portOf(r.scheme, r.port)
}

// portOf is port, or the default port of scheme.
func portOf(scheme, port string) string {
	switch {
	case port != "":
		return port
	case scheme == "http":
		return "80"
	}
	return "443"
}

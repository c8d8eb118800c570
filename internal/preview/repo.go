package preview

import (
	"net/url"
	"strings"
)

// SameRepository reports whether two Git URLs name the same repository,
// whatever the transport and credentials: https://gitlab-ci-token:x@host/g/p.git,
// ssh://git@host:22/g/p, git@host:g/p.git and https://host/g/p are one
// repository. Host names compare case-insensitively, paths exactly (after
// a trailing ".git" or "/").
func SameRepository(a, b string) bool {
	na, nb := normalizeRepoURL(a), normalizeRepoURL(b)
	return na != "" && na == nb
}

// normalizeRepoURL is "host/path" of a Git URL, "" when it names none.
func normalizeRepoURL(raw string) string {
	raw = strings.TrimSpace(raw)
	var host, p string
	if u, err := url.Parse(raw); err == nil && u.Scheme != "" && u.Host != "" {
		host, p = u.Hostname(), u.Path
	} else if at, rest, ok := strings.Cut(raw, ":"); ok && !strings.Contains(at, "/") && !strings.HasPrefix(rest, "//") {
		// scp-like: [user@]host:path
		if i := strings.LastIndex(at, "@"); i >= 0 {
			at = at[i+1:]
		}
		host, p = at, rest
	} else {
		return ""
	}
	p = strings.Trim(p, "/")
	p = strings.TrimSuffix(p, ".git")
	if host == "" || p == "" {
		return ""
	}
	return strings.ToLower(host) + "/" + p
}

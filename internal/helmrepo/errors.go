package helmrepo

import (
	"errors"
	"fmt"
	"net/url"
)

// Sentinels decided with errors.Is.
var (
	// ErrLimit is wrapped by every *LimitError: an index, manifest or chart
	// larger than Limits allows, or too many redirects.
	ErrLimit = errors.New("helm repository limit exceeded")
	// ErrDigest is wrapped by every *DigestError: a download whose digest is
	// not the one the index, lock or manifest names.
	ErrDigest = errors.New("chart digest mismatch")
	// ErrInsecure is returned when a repository or registry would be reached
	// over plain http:// without Options.AllowInsecureHTTP.
	ErrInsecure = errors.New("plain http:// refused")
	// ErrNotFound is returned when a chart or a version matching the asked
	// version is not in the repository.
	ErrNotFound = errors.New("chart not found")
	// ErrUnsupported is returned for a repository keyless cannot resolve:
	// a Helm repository name (@name, alias:name) instead of a URL, or a
	// scheme other than https://, http:// (with the flag) and oci://.
	ErrUnsupported = errors.New("unsupported chart repository")
	// ErrOutOfSync is returned when a chart's Chart.lock does not match its
	// Chart.yaml dependencies (as `helm dependency build` decides it).
	ErrOutOfSync = errors.New("lock file out of sync")
	// ErrCredential is returned (wrapped) when a Secret cannot be turned
	// into Credentials for a repository.
	ErrCredential = errors.New("helm repository credential refused")
)

// LimitError says which limit a download hit and where. It wraps ErrLimit.
type LimitError struct {
	// Limit names the field of Limits (e.g. "MaxIndexBytes").
	Limit string
	// Where is the (redacted) URL or chart.
	Where string
	// Detail says what was seen.
	Detail string
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%s: %s (limit %s)", e.Where, e.Detail, e.Limit)
}

// Unwrap makes errors.Is(err, ErrLimit) hold.
func (e *LimitError) Unwrap() error { return ErrLimit }

// DigestError is a download whose content is not what was promised. It
// wraps ErrDigest.
type DigestError struct {
	// What names the chart (repository, name, version) or the URL.
	What string
	// Want is the digest the index, lock or manifest names; Got the
	// digest of what arrived.
	Want, Got string
}

func (e *DigestError) Error() string {
	return fmt.Sprintf("%s: downloaded content has digest %s, but %s was expected; the repository serves something other than what its index (or manifest) names — refused",
		e.What, e.Got, e.Want)
}

// Unwrap makes errors.Is(err, ErrDigest) hold.
func (e *DigestError) Unwrap() error { return ErrDigest }

// StatusError is an HTTP answer outside 2xx (after redirects).
type StatusError struct {
	URL  string
	Code int
}

func (e *StatusError) Error() string {
	hint := ""
	switch e.Code {
	case 401, 403:
		hint = " (check the repository credential: a Secret labelled keyless.dev/credential: helm bound to this host)"
	case 404:
		hint = " (check spec.source.repoURL)"
	}
	return fmt.Sprintf("GET %s: HTTP %d%s", e.URL, e.Code, hint)
}

// redact returns raw without a password or token in its user info.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable URL>"
	}
	if u.User != nil {
		u.User = url.User("***")
	}
	return u.String()
}

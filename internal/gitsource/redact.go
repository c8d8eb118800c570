package gitsource

import (
	"net/url"
	"strings"
)

// Redact returns raw with the user information of a URL (a token or a
// password embedded in it: https://user:TOKEN@host/repo) replaced by ***,
// for messages, status, Events and logs. Other strings are returned as is.
func Redact(raw string) string {
	secret := userinfo(raw)
	if secret == "" {
		return raw
	}
	return strings.ReplaceAll(raw, secret+"@", "***@")
}

// userinfo returns the "user[:password]" part of an http(s) or ssh:// URL
// that carries a password or token, or "".
func userinfo(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return ""
	}
	if _, hasPassword := u.User.Password(); !hasPassword && (u.Scheme == "ssh" || u.User.Username() == "git") {
		return "" // ssh://git@host: a user name, not a secret
	}
	_, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return ""
	}
	at := strings.Index(rest, "@")
	if slash := strings.Index(rest, "/"); at < 0 || (slash >= 0 && slash < at) {
		return ""
	}
	return rest[:at]
}

// redactedError hides a URL's user information in an error's message while
// keeping the error for errors.Is and errors.As.
type redactedError struct {
	err    error
	secret string
}

func (e *redactedError) Error() string {
	return strings.ReplaceAll(e.err.Error(), e.secret, "***")
}

func (e *redactedError) Unwrap() error { return e.err }

// redactErr wraps err so that url's user information never appears in it.
func redactErr(url string, err error) error {
	if err == nil {
		return nil
	}
	secret := userinfo(url)
	if secret == "" {
		return err
	}
	return &redactedError{err: err, secret: secret}
}

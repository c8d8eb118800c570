package controller

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	corev1 "k8s.io/api/core/v1"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

// ErrCredentialRefused is returned (wrapped) when an Application's Git
// credential may not be used for its repoURL.
var ErrCredentialRefused = errors.New("git credential refused")

// checkCredential decides whether secret may be sent to repoURL: it must be
// labelled as a Git credential (so an Application cannot name any other
// Secret of its namespace and ship it to a URL of its choosing), be made
// for repoURL's host, and never travel over plain http:// unless
// allowInsecure (loopback tests and the demo).
func checkCredential(secret *corev1.Secret, repoURL string, allowInsecure bool) error {
	id := secret.Namespace + "/" + secret.Name
	if secret.Labels[kv1.CredentialLabel] != kv1.CredentialGit {
		return fmt.Errorf("secret %s (spec.source.secretRef) is not labelled %s=%s; label only Secrets meant as Git credentials: %w",
			id, kv1.CredentialLabel, kv1.CredentialGit, ErrCredentialRefused)
	}
	host, scheme := repoHost(repoURL)
	if host == "" {
		return fmt.Errorf("cannot tell the host of spec.source.repoURL to send secret %s to: %w", id, ErrCredentialRefused)
	}
	allowed := strings.Split(secret.Annotations[kv1.GitHostAnnotation], ",")
	ok := false
	for _, a := range allowed {
		if a = strings.ToLower(strings.TrimSpace(a)); a != "" && (a == host || a == strings.Split(host, ":")[0]) {
			ok = true
		}
	}
	if !ok {
		return fmt.Errorf("secret %s is for %s=%q, not for %s (the host of spec.source.repoURL): %w",
			id, kv1.GitHostAnnotation, secret.Annotations[kv1.GitHostAnnotation], host, ErrCredentialRefused)
	}
	if scheme == "http" && !allowInsecure {
		return fmt.Errorf("secret %s would be sent over plain http:// to %s; use https:// (or run the controller with --allow-insecure-http, for loopback tests only): %w",
			id, host, ErrCredentialRefused)
	}
	return nil
}

// checkEmbeddedCredential refuses a repoURL that carries a password or
// token over plain http:// unless allowInsecure.
func checkEmbeddedCredential(repoURL string, allowInsecure bool) error {
	u, err := url.Parse(repoURL)
	if err != nil {
		return nil //nolint:nilerr // an unparsable URL carries no credential we could send; gitsource reports it
	}
	if u.User == nil || u.Scheme != "http" || allowInsecure {
		return nil
	}
	return fmt.Errorf("spec.source.repoURL carries a credential over plain http://; use https:// (or --allow-insecure-http, for loopback tests only): %w", ErrCredentialRefused)
}

// repoHost returns the lower-case host[:port] and scheme of a Git URL
// (https://host/…, ssh://git@host:port/…, or scp-like git@host:path).
func repoHost(repoURL string) (host, scheme string) {
	if !strings.Contains(repoURL, "://") {
		if at := strings.Index(repoURL, "@"); at >= 0 {
			if colon := strings.Index(repoURL[at:], ":"); colon > 0 {
				return strings.ToLower(repoURL[at+1 : at+colon]), "ssh"
			}
		}
		return "", ""
	}
	u, err := url.Parse(repoURL)
	if err != nil {
		return "", ""
	}
	return strings.ToLower(u.Host), u.Scheme
}

// Package credential decides whether a Secret of a tenant's namespace may
// be used for a purpose and sent to an address. It is the one rule the
// controller (Git fetches, commit statuses, notifications) and every CLI
// path that reads an Application's Secret (history --changes, rollback)
// apply, so a Secret travels only where it was made for.
package credential

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/gitsource"
)

// ErrRefused is returned (wrapped) when a Secret may not be used for what
// an Application asks, or not sent where it asks.
var ErrRefused = errors.New("credential refused")

// Use is what a Secret is labelled for (the value of kv1.CredentialLabel).
type Use string

// Uses.
const (
	// Git: spec.source.secretRef, sent to the repository's host.
	Git Use = kv1.CredentialGit
	// Forge: spec.commitStatus.secretRef, sent to the forge API of the
	// repository's host.
	Forge Use = kv1.CredentialForge
	// Notification: spec.notifications[].secretRef; the address is the
	// Secret's own.
	Notification Use = kv1.CredentialNotification
	// Helm: a Helm repository's or OCI registry's credential, sent to
	// the repository's (registry's) host.
	Helm Use = kv1.CredentialHelm
)

// boundToHost reports whether a Secret of this use names the hosts it may
// be sent to (kv1.GitHostAnnotation).
func (u Use) boundToHost() bool { return u == Git || u == Forge || u == Helm }

// Readable refuses a Secret that no keyless path reads through a
// secretRef, whatever its use: a kubernetes.io/service-account-token
// Secret (its token is a live identity of the cluster, never a credential
// to send anywhere or to decrypt with). field names the spec field.
func Readable(s *corev1.Secret, field string) error {
	if s.Type == corev1.SecretTypeServiceAccountToken {
		return fmt.Errorf("secret %s/%s (%s) is a %s Secret: keyless never reads ServiceAccount tokens; name a Secret made for this use: %w",
			s.Namespace, s.Name, field, corev1.SecretTypeServiceAccountToken, ErrRefused)
	}
	return nil
}

// Check decides whether s may be used for use and sent to target: it must
// be readable (Readable), labelled kv1.CredentialLabel=use (so an
// Application cannot name any other Secret of its namespace and ship it to
// an address of its choosing), for Git, Forge and Helm (target an https://
// or oci:// URL) be annotated kv1.GitHostAnnotation with target's host
// (host, any port; or host:port), and never travel over plain http://
// unless allowInsecure (loopback tests and the demo). For Notification, target is ignored: the address is the
// Secret's own and the sender checks its scheme. field names the spec
// field that referred to s.
func Check(s *corev1.Secret, use Use, field, target string, allowInsecure bool) error {
	if err := Readable(s, field); err != nil {
		return err
	}
	id := s.Namespace + "/" + s.Name
	if got := s.Labels[kv1.CredentialLabel]; got != string(use) {
		return fmt.Errorf("secret %s (%s) is not labelled %s=%s (it is %q); label only Secrets meant for this use: %w",
			id, field, kv1.CredentialLabel, use, got, ErrRefused)
	}
	if !use.boundToHost() {
		return nil
	}
	host, scheme := Host(target)
	if host == "" {
		return fmt.Errorf("cannot tell the host of %q to send secret %s (%s) to: %w", gitsource.Redact(target), id, field, ErrRefused)
	}
	if !HostAllowed(s.Annotations[kv1.GitHostAnnotation], host) {
		return fmt.Errorf("secret %s (%s) is for %s=%q, not for %s (the host of spec.source.repoURL): %w",
			id, field, kv1.GitHostAnnotation, s.Annotations[kv1.GitHostAnnotation], host, ErrRefused)
	}
	if scheme == "http" && !allowInsecure {
		return fmt.Errorf("secret %s (%s) would be sent over plain http:// to %s; use https:// (or --allow-insecure-http, for loopback tests only): %w",
			id, field, host, ErrRefused)
	}
	return nil
}

// Get reads the Secret name of namespace with r (one GET; uncached when r
// is an API reader) and checks it with Check.
func Get(ctx context.Context, r client.Reader, namespace, name string, use Use, field, target string, allowInsecure bool) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, s); err != nil {
		return nil, fmt.Errorf("reading Secret %s/%s (%s): %w", namespace, name, field, err)
	}
	if err := Check(s, use, field, target, allowInsecure); err != nil {
		return nil, err
	}
	return s, nil
}

// HostAllowed reports whether host (lower-case host[:port]) is one of the
// comma-separated annotation's entries; an entry without a port allows
// every port of its host.
func HostAllowed(annotation, host string) bool {
	name := host
	if h, _, ok := strings.Cut(host, ":"); ok && !strings.HasPrefix(host, "[") {
		name = h
	} else if i := strings.LastIndex(host, "]:"); i > 0 {
		name = host[:i+1]
	}
	for _, a := range strings.Split(annotation, ",") {
		if a = strings.ToLower(strings.TrimSpace(a)); a != "" && (a == host || a == name) {
			return true
		}
	}
	return false
}

// CheckEmbedded refuses a URL that carries a password or token over plain
// http:// unless allowInsecure.
func CheckEmbedded(rawURL string, allowInsecure bool) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil //nolint:nilerr // an unparsable URL carries no credential we could send; the Git client reports it
	}
	if u.User == nil || u.Scheme != "http" || allowInsecure {
		return nil
	}
	return fmt.Errorf("spec.source.repoURL carries a credential over plain http://; use https:// (or --allow-insecure-http, for loopback tests only): %w", ErrRefused)
}

// Host returns the lower-case host[:port] and scheme of a Git or HTTP URL
// (https://host/…, ssh://git@host:port/…, or scp-like git@host:path).
func Host(rawURL string) (host, scheme string) {
	if !strings.Contains(rawURL, "://") {
		if at := strings.Index(rawURL, "@"); at >= 0 {
			if colon := strings.Index(rawURL[at:], ":"); colon > 0 {
				return strings.ToLower(rawURL[at+1 : at+colon]), "ssh"
			}
		}
		return "", ""
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", ""
	}
	return strings.ToLower(u.Host), u.Scheme
}

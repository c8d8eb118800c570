// Package gitsource fetches what an Application deploys: a cheap ls-remote per
// interval, a shallow fetch only when the commit moved, one on-disk cache per
// repository URL shared by every Application, checkouts by commit, commit
// metadata, and signature checks.
package gitsource

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// ErrHostKey is returned (wrapped) when an SSH server's host key is unknown
// or not the one known_hosts lists.
var ErrHostKey = errors.New("ssh host key refused")

// Credential keys read from an Application's secretRef Secret.
const (
	KeyUsername    = "username"
	KeyPassword    = "password"
	KeyBearerToken = "bearerToken"
	KeyIdentity    = "identity"
	KeyKnownHosts  = "known_hosts"
)

// AuthFromSecret builds go-git credentials for repoURL from a Secret's data.
// HTTPS takes username/password (or just password, as with GitLab tokens) or
// bearerToken; SSH takes identity (a private key) and known_hosts, and refuses
// unknown host keys. The SSH user is the one the URL names
// (ssh://deploy@host/…, deploy@host:org/repo), else the Secret's username,
// else "git". Secret values never appear in errors.
func AuthFromSecret(repoURL string, data map[string][]byte) (transport.AuthMethod, error) {
	if data == nil {
		return nil, nil
	}
	if isSSH(repoURL) {
		identity := data[KeyIdentity]
		if len(identity) == 0 {
			return nil, fmt.Errorf("ssh repository %s needs the key %q (a private key) in the Git secret", Redact(repoURL), KeyIdentity)
		}
		kh := data[KeyKnownHosts]
		if len(kh) == 0 {
			return nil, fmt.Errorf("ssh repository %s needs the key %q in the Git secret: unknown host keys are refused", Redact(repoURL), KeyKnownHosts)
		}
		user := URLUser(repoURL)
		if user == "" {
			user = string(data[KeyUsername])
		}
		return SSHAuth(user, identity, string(data[KeyPassword]), kh)
	}
	if tok := string(data[KeyBearerToken]); tok != "" {
		return &githttp.TokenAuth{Token: tok}, nil
	}
	if pw := string(data[KeyPassword]); pw != "" {
		user := string(data[KeyUsername])
		if user == "" {
			user = "git"
		}
		return &githttp.BasicAuth{Username: user, Password: pw}, nil
	}
	return nil, fmt.Errorf("git secret has none of %q, %q or %q", KeyPassword, KeyBearerToken, KeyIdentity)
}

// SSHAuth is SSH public-key authentication as user ("git" when empty) with
// a private key (its passphrase may be empty), checking the server's host
// key against knownHosts (OpenSSH known_hosts lines); an unknown host key is
// refused. The key never appears in errors.
func SSHAuth(user string, identity []byte, passphrase string, knownHosts []byte) (transport.AuthMethod, error) {
	if user == "" {
		user = "git"
	}
	keys, err := gitssh.NewPublicKeys(user, identity, passphrase)
	if err != nil {
		return nil, errors.New("git secret: key \"identity\" is not a usable private key")
	}
	cb, err := knownHostsCallback(knownHosts)
	if err != nil {
		return nil, err
	}
	keys.HostKeyCallback = cb
	return keys, nil
}

// URLUser returns the user an SSH URL names — ssh://deploy@host/org/repo or
// the scp-like deploy@host:org/repo — or "" (none, or not an SSH URL).
func URLUser(repoURL string) string {
	if !isSSH(repoURL) {
		return ""
	}
	if strings.HasPrefix(repoURL, "ssh://") {
		u, err := url.Parse(repoURL)
		if err != nil || u.User == nil {
			return ""
		}
		return u.User.Username()
	}
	user, _, _ := strings.Cut(repoURL, "@")
	if strings.ContainsAny(user, ":/") {
		return ""
	}
	return user
}

// ForURL returns auth with its SSH user set to the one repoURL names, when
// it names one (git uses the URL's user too); other auth is returned as is.
func ForURL(auth transport.AuthMethod, repoURL string) transport.AuthMethod {
	keys, ok := auth.(*gitssh.PublicKeys)
	user := URLUser(repoURL)
	if !ok || user == "" || keys.User == user {
		return auth
	}
	c := *keys
	c.User = user
	return &c
}

func isSSH(url string) bool {
	return strings.HasPrefix(url, "ssh://") || (!strings.Contains(url, "://") && strings.Contains(url, "@"))
}

func knownHostsCallback(data []byte) (ssh.HostKeyCallback, error) {
	// knownhosts reads files only; hand it a pipe rather than a temporary
	// file, so nothing is written to disk (the controller's root filesystem
	// is read-only) and the host list never lingers in /tmp.
	rd, wr, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("reading known_hosts: %w", err)
	}
	defer func() { _ = rd.Close() }()
	go func() {
		_, _ = wr.Write(data)
		_ = wr.Close()
	}()
	cb, err := knownhosts.New(fmt.Sprintf("/dev/fd/%d", rd.Fd()))
	if err != nil {
		return nil, fmt.Errorf("git secret: key %q: %w", KeyKnownHosts, err)
	}
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := cb(hostname, remote, key)
		if err == nil {
			return nil
		}
		fp := ssh.FingerprintSHA256(key)
		var ke *knownhosts.KeyError
		if errors.As(err, &ke) && len(ke.Want) > 0 {
			return fmt.Errorf("host key of %s changed: it presents %s %s, known_hosts has another (line %d); if the server's key was rotated, update known_hosts in the Git secret, else someone may be in the middle: %w",
				hostname, key.Type(), fp, ke.Want[0].Line, ErrHostKey)
		}
		return fmt.Errorf("host key of %s (%s %s) is not in known_hosts; add the server's key to known_hosts in the Git secret (ssh-keyscan, checked against the forge's published fingerprints): %w",
			hostname, key.Type(), fp, ErrHostKey)
	}, nil
}

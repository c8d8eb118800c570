// Package gitsource fetches what an Application deploys: a cheap ls-remote per
// interval, a shallow fetch only when the commit moved, one on-disk cache per
// repository URL shared by every Application, checkouts by commit, commit
// metadata, and signature checks.
package gitsource

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

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
// unknown host keys. Secret values never appear in errors.
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
		return SSHAuth(string(data[KeyUsername]), identity, string(data[KeyPassword]), kh)
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
		if err := cb(hostname, remote, key); err != nil {
			return fmt.Errorf("host key of %s is not in known_hosts: %w", hostname, err)
		}
		return nil
	}, nil
}

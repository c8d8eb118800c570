package gitserver

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
	"k8s.io/apimachinery/pkg/util/wait"
)

// SSHDPath is where Debian's openssh-server puts the daemon; sshd must be
// started by its absolute path.
const SSHDPath = "/usr/sbin/sshd"

// SSHOptions configure StartSSH.
type SSHOptions struct {
	// Root is the folder of bare repositories to serve (a Server's Root, so
	// one set of repositories is reachable over HTTP and SSH).
	Root string
	// AuthorizedKeys are the public keys allowed in (deploy keys).
	AuthorizedKeys []ssh.PublicKey
}

// SSHServer is a real OpenSSH sshd on a loopback port, run as the current
// user (no privileges needed beyond what that user has), serving only
// git-upload-pack and git-receive-pack for the repositories under Root,
// the way a forge's SSH endpoint does.
type SSHServer struct {
	dir     string
	addr    string
	user    string
	hostKey ssh.Signer
	cmd     *exec.Cmd
	done    chan struct{}
	stop    sync.Once
	logPath string
}

// ErrNoSSHD is returned when openssh-server is not installed.
var ErrNoSSHD = errors.New("sshd not found at " + SSHDPath + " (install openssh-server; .ci/run does)")

// forceCommand maps the client's git command onto Root, refusing anything
// else, like a forge's SSH shell.
const forceCommand = `#!/bin/sh
set -eu
cmd=${SSH_ORIGINAL_COMMAND:-}
case "$cmd" in
  "git-upload-pack "*) verb=git-upload-pack ;;
  "git-receive-pack "*) verb=git-receive-pack ;;
  *) echo "only git-upload-pack and git-receive-pack are served" >&2; exit 1 ;;
esac
path=$(printf '%%s' "${cmd#"$verb "}" | tr -d "'")
path=${path#/}
case "$path" in *..*) echo "refusing path $path" >&2; exit 1 ;; esac
exec "$verb" %q/"$path"
`

// StartSSH starts sshd and waits until it accepts connections.
func StartSSH(ctx context.Context, opts SSHOptions) (*SSHServer, error) {
	if _, err := os.Stat(SSHDPath); err != nil {
		return nil, ErrNoSSHD
	}
	me, err := user.Current()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "keyless-sshd-")
	if err != nil {
		return nil, err
	}
	s := &SSHServer{dir: dir, user: me.Username, done: make(chan struct{}), logPath: filepath.Join(dir, "sshd.log")}
	if err := s.writeConfig(opts); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if os.Geteuid() == 0 {
		// Run as root, sshd wants its privilege separation directory.
		_ = os.MkdirAll("/run/sshd", 0o755)
	}
	log, err := os.Create(s.logPath)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	s.cmd = exec.Command(SSHDPath, "-D", "-e", "-f", filepath.Join(dir, "sshd_config")) //nolint:gosec // a test helper running the system's sshd
	s.cmd.Stdout, s.cmd.Stderr = log, log
	if err := s.cmd.Start(); err != nil {
		_ = log.Close()
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("starting sshd: %w", err)
	}
	go func() {
		_ = s.cmd.Wait()
		_ = log.Close()
		close(s.done)
	}()
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		select {
		case <-s.done:
			b, _ := os.ReadFile(s.logPath)
			return false, fmt.Errorf("sshd exited: %s", strings.TrimSpace(string(b)))
		default:
		}
		c, dialErr := net.DialTimeout("tcp", s.addr, time.Second)
		if dialErr == nil {
			_ = c.Close()
		}
		return dialErr == nil, nil // not listening yet: poll again
	}); err != nil {
		s.Stop()
		return nil, fmt.Errorf("waiting for sshd on %s: %w", s.addr, err)
	}
	return s, nil
}

func (s *SSHServer) writeConfig(opts SSHOptions) error {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	if s.hostKey, err = ssh.NewSignerFromKey(priv); err != nil {
		return err
	}
	block, err := ssh.MarshalPrivateKey(priv, "keyless test host key")
	if err != nil {
		return err
	}
	hostKey := filepath.Join(s.dir, "host_ed25519")
	if err := os.WriteFile(hostKey, pem.EncodeToMemory(block), 0o600); err != nil {
		return err
	}
	var keys strings.Builder
	for _, k := range opts.AuthorizedKeys {
		keys.Write(ssh.MarshalAuthorizedKey(k))
	}
	authorized := filepath.Join(s.dir, "authorized_keys")
	if err := os.WriteFile(authorized, []byte(keys.String()), 0o600); err != nil {
		return err
	}
	shell := filepath.Join(s.dir, "git-shell")
	if err := os.WriteFile(shell, fmt.Appendf(nil, forceCommand, opts.Root), 0o700); err != nil { //nolint:gosec // the forced command must be executable
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	s.addr = l.Addr().String()
	_ = l.Close()
	_, port, _ := net.SplitHostPort(s.addr)
	config := strings.Join([]string{
		"ListenAddress 127.0.0.1:" + port,
		"HostKey " + hostKey,
		"PidFile " + filepath.Join(s.dir, "sshd.pid"),
		"AuthorizedKeysFile " + authorized,
		"AllowUsers " + s.user,
		"AuthenticationMethods publickey",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PermitRootLogin prohibit-password",
		"UsePAM no",
		"StrictModes no",
		"PermitUserEnvironment no",
		"AllowTcpForwarding no",
		"X11Forwarding no",
		"PermitTTY no",
		"ForceCommand " + shell,
		"LogLevel VERBOSE",
	}, "\n") + "\n"
	return os.WriteFile(filepath.Join(s.dir, "sshd_config"), []byte(config), 0o600)
}

// User is the login user: the user the server runs as (sshd can only log in
// the user it runs as, unless it runs as root).
func (s *SSHServer) User() string { return s.user }

// Addr is the host:port sshd listens on.
func (s *SSHServer) Addr() string { return s.addr }

// RepoURL is repository name's ssh:// URL with the login user in it.
func (s *SSHServer) RepoURL(name string) string {
	return "ssh://" + s.user + "@" + s.addr + "/" + name + ".git"
}

// KnownHosts is the known_hosts line for this server's host key.
func (s *SSHServer) KnownHosts() []byte {
	return []byte(knownhosts.Line([]string{knownhosts.Normalize(s.addr)}, s.hostKey.PublicKey()) + "\n")
}

// HostKey is the server's public host key.
func (s *SSHServer) HostKey() ssh.PublicKey { return s.hostKey.PublicKey() }

// Log returns what sshd logged so far (for failing tests).
func (s *SSHServer) Log() string {
	b, _ := os.ReadFile(s.logPath)
	return string(b)
}

// Stop kills sshd and removes its folder.
func (s *SSHServer) Stop() {
	s.stop.Do(func() {
		if s.cmd != nil && s.cmd.Process != nil {
			_ = s.cmd.Process.Kill()
			<-s.done
		}
		_ = os.RemoveAll(s.dir)
	})
}

// NewDeployKey makes an ed25519 key pair: the OpenSSH private key (what a
// Git Secret's identity or `keyless bump --ssh-key` holds) and its signer.
func NewDeployKey() ([]byte, ssh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "deploy key")
	if err != nil {
		return nil, nil, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(block), signer, nil
}

package gitserver

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"golang.org/x/crypto/ssh"
	"k8s.io/apimachinery/pkg/util/wait"
)

// GiteaEnv names the Gitea binary (`make gitea` builds bin/gitea and
// `make test` sets it); without it bin/gitea above the working directory
// is used.
const GiteaEnv = "KEYLESS_GITEA"

// ErrNoGitea is returned when no Gitea binary is found.
var ErrNoGitea = errors.New("no Gitea binary: run `make gitea` (it builds bin/gitea) or set " + GiteaEnv)

// Gitea's test account.
const (
	GiteaUser     = "keyless"
	giteaPassword = "Keyless-test-1"
)

// Gitea is a real Gitea (SQLite, loopback, built-in SSH server) for tests:
// a forge with its own push webhooks, commit status API and deploy keys.
type Gitea struct {
	dir string
	// assets holds Gitea's options/ and templates/ (hack/build-gitea.sh).
	assets  string
	cmd     *exec.Cmd
	done    chan struct{}
	logPath string
	url     string
	sshPort int
	token   string
	http    *http.Client
}

// GiteaPath returns the Gitea binary to run.
func GiteaPath() (string, error) {
	if p := os.Getenv(GiteaEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w (%s=%s: %w)", ErrNoGitea, GiteaEnv, p, err)
		}
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, "bin", "gitea")
			if _, err := os.Stat(p); err != nil {
				return "", ErrNoGitea
			}
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", ErrNoGitea
		}
		dir = parent
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// StartGitea starts Gitea in a new temporary folder, with an admin user
// (GiteaUser) and an API token, and waits until its API answers.
func StartGitea(ctx context.Context) (*Gitea, error) {
	bin, err := GiteaPath()
	if err != nil {
		return nil, err
	}
	httpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	sshPort, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "keyless-gitea-")
	if err != nil {
		return nil, err
	}
	g := &Gitea{dir: dir, assets: bin + "-assets", done: make(chan struct{}), logPath: filepath.Join(dir, "gitea.log"),
		url: fmt.Sprintf("http://127.0.0.1:%d", httpPort), sshPort: sshPort, http: &http.Client{Timeout: 30 * time.Second}}
	if err := os.WriteFile(filepath.Join(dir, "app.ini"), []byte(g.config(httpPort)), 0o600); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	run := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, bin, append(args, "-c", filepath.Join(dir, "app.ini"))...) //nolint:gosec // a test helper running the Gitea `make gitea` built
		cmd.Env, cmd.Dir = g.env(), dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("gitea %s: %w: %s", args[0], err, bytes.TrimSpace(out))
		}
		return string(out), nil
	}
	if _, err := run("migrate"); err != nil {
		g.Stop()
		return nil, err
	}
	if _, err := run("admin", "user", "create", "--admin", "--username", GiteaUser, "--password", giteaPassword,
		"--email", GiteaUser+"@example.com", "--must-change-password=false"); err != nil {
		g.Stop()
		return nil, err
	}
	out, err := run("admin", "user", "generate-access-token", "--username", GiteaUser, "--token-name", "tests", "--scopes", "all", "--raw")
	if err != nil {
		g.Stop()
		return nil, err
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	g.token = strings.TrimSpace(lines[len(lines)-1])
	if err := g.start(ctx, bin); err != nil {
		g.Stop()
		return nil, err
	}
	return g, nil
}

func (g *Gitea) env() []string {
	return append(os.Environ(), "GITEA_WORK_DIR="+g.dir, "HOME="+g.dir, "GITEA_I_AM_BEING_UNSAFE_RUNNING_AS_ROOT=true", "USER=git")
}

// config is app.ini: SQLite, loopback only, no mail, no registration,
// webhooks allowed to loopback (the controller under test listens there).
func (g *Gitea) config(httpPort int) string {
	return fmt.Sprintf(`APP_NAME = keyless tests
RUN_MODE = prod
WORK_PATH = %[1]s

[database]
DB_TYPE = sqlite3
PATH = %[1]s/gitea.db

[repository]
ROOT = %[1]s/repos
DEFAULT_BRANCH = main

[server]
PROTOCOL = http
HTTP_ADDR = 127.0.0.1
HTTP_PORT = %[2]d
ROOT_URL = %[3]s/
DOMAIN = 127.0.0.1
START_SSH_SERVER = true
BUILTIN_SSH_SERVER_USER = git
SSH_USER = git
SSH_DOMAIN = 127.0.0.1
SSH_LISTEN_HOST = 127.0.0.1
SSH_PORT = %[4]d
SSH_LISTEN_PORT = %[4]d
OFFLINE_MODE = true
LFS_START_SERVER = false
APP_DATA_PATH = %[1]s/data
STATIC_ROOT_PATH = %[5]s

[security]
INSTALL_LOCK = true
SECRET_KEY = keyless-tests-only-secret-key-0123456789

[service]
DISABLE_REGISTRATION = true

[webhook]
ALLOWED_HOST_LIST = loopback
DELIVER_TIMEOUT = 10

[session]
PROVIDER = memory

[cache]
ADAPTER = memory

[mailer]
ENABLED = false

[cron]
ENABLED = false

[log]
LEVEL = warn
ROOT_PATH = %[1]s/log
`, g.dir, httpPort, g.url, g.sshPort, g.assets)
}

func (g *Gitea) start(ctx context.Context, bin string) error {
	log, err := os.Create(g.logPath)
	if err != nil {
		return err
	}
	g.cmd = exec.Command(bin, "web", "-c", filepath.Join(g.dir, "app.ini")) //nolint:gosec // a test helper running the Gitea `make gitea` built
	g.cmd.Env, g.cmd.Dir = g.env(), g.dir
	g.cmd.Stdout, g.cmd.Stderr = log, log
	if err := g.cmd.Start(); err != nil {
		_ = log.Close()
		return fmt.Errorf("starting gitea: %w", err)
	}
	go func() {
		_ = g.cmd.Wait()
		_ = log.Close()
		close(g.done)
	}()
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		select {
		case <-g.done:
			return false, fmt.Errorf("gitea exited: %s", g.Log())
		default:
		}
		apiErr := g.api(ctx, http.MethodGet, "/version", nil, nil)
		c, dialErr := net.DialTimeout("tcp", g.SSHAddr(), time.Second)
		if dialErr == nil {
			_ = c.Close()
		}
		return apiErr == nil && dialErr == nil, nil // not serving yet: poll again
	})
}

// URL is Gitea's base URL (http://127.0.0.1:PORT).
func (g *Gitea) URL() string { return g.url }

// Token is the API token of GiteaUser (also a Git password over HTTP).
func (g *Gitea) Token() string { return g.token }

// Auth is GiteaUser's Git credential over HTTP.
func (g *Gitea) Auth() transport.AuthMethod {
	return &githttp.BasicAuth{Username: GiteaUser, Password: g.token}
}

// RepoURL is repo's clone URL over HTTP.
func (g *Gitea) RepoURL(repo string) string { return g.url + "/" + GiteaUser + "/" + repo + ".git" }

// SSHAddr is the built-in SSH server's address.
func (g *Gitea) SSHAddr() string { return "127.0.0.1:" + strconv.Itoa(g.sshPort) }

// SSHRepoURL is repo's clone URL over Gitea's SSH server.
func (g *Gitea) SSHRepoURL(repo string) string {
	return "ssh://git@" + g.SSHAddr() + "/" + GiteaUser + "/" + repo + ".git"
}

// KnownHosts returns a known_hosts line for the SSH server, read from the
// server itself.
func (g *Gitea) KnownHosts(ctx context.Context) ([]byte, error) {
	var key ssh.PublicKey
	cfg := &ssh.ClientConfig{User: "git", Timeout: 5 * time.Second,
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error { key = k; return errors.New("host key read") }}
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", g.SSHAddr())
	if err != nil {
		return nil, err
	}
	defer func() { _ = conn.Close() }()
	if c, _, _, err := ssh.NewClientConn(conn, g.SSHAddr(), cfg); err == nil {
		_ = c.Close() // the callback refuses every key: never reached
	}
	if key == nil {
		return nil, errors.New("gitea's SSH server showed no host key")
	}
	return []byte(fmt.Sprintf("[127.0.0.1]:%d %s", g.sshPort, ssh.MarshalAuthorizedKey(key))), nil
}

// Log returns Gitea's output so far.
func (g *Gitea) Log() string {
	b, _ := os.ReadFile(g.logPath)
	return string(b)
}

// Stop stops Gitea and deletes its folder.
func (g *Gitea) Stop() {
	if g.cmd != nil && g.cmd.Process != nil {
		_ = g.cmd.Process.Kill()
		<-g.done
	}
	_ = os.RemoveAll(g.dir)
}

// api calls Gitea's REST API as GiteaUser; out, when set, receives the JSON answer.
func (g *Gitea) api(ctx context.Context, method, path string, in, out any) error {
	return g.apiWith(ctx, nil, method, path, in, out)
}

// apiWith is api with extra request headers.
func (g *Gitea) apiWith(ctx context.Context, headers map[string]string, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, g.url+"/api/v1"+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if g.token != "" {
		req.Header.Set("Authorization", "token "+g.token)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := g.http.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("gitea %s %s: HTTP %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// CreateRepo creates an empty repository of GiteaUser.
func (g *Gitea) CreateRepo(ctx context.Context, name string) error {
	return g.api(ctx, http.MethodPost, "/user/repos", map[string]any{"name": name, "default_branch": "main", "private": true}, nil)
}

// Commit clones repo, applies c and pushes it as GiteaUser, like a developer would.
func (g *Gitea) Commit(ctx context.Context, repo string, c Commit) (string, error) {
	return pushCommit(ctx, g.RepoURL(repo), g.Auth(), c)
}

// AddWebhook makes Gitea post repo's pushes to url (type "gitea": signed
// with X-Hub-Signature-256 under secret, GitHub-compatible headers).
func (g *Gitea) AddWebhook(ctx context.Context, repo, url, secret string) error {
	type hookConfig struct {
		URL         string `json:"url"`
		ContentType string `json:"content_type"`
		Secret      string `json:"secret"`
	}
	type createHook struct {
		Type   string     `json:"type"`
		Active bool       `json:"active"`
		Events []string   `json:"events"`
		Config hookConfig `json:"config"`
	}
	return g.api(ctx, http.MethodPost, "/repos/"+GiteaUser+"/"+repo+"/hooks", createHook{
		Type: "gitea", Active: true, Events: []string{"push"},
		Config: hookConfig{URL: url, ContentType: "json", Secret: secret},
	}, nil)
}

// AddDeployKey adds a read-only deploy key (an authorized_keys line) to repo.
func (g *Gitea) AddDeployKey(ctx context.Context, repo, title string, authorizedKey []byte) error {
	return g.api(ctx, http.MethodPost, "/repos/"+GiteaUser+"/"+repo+"/keys", map[string]any{
		"title": title, "key": strings.TrimSpace(string(authorizedKey)), "read_only": true,
	}, nil)
}

// CommitStatus is one status Gitea holds for a commit.
type CommitStatus struct {
	ID          int64  `json:"id"`
	State       string `json:"status"`
	Context     string `json:"context"`
	Description string `json:"description"`
	TargetURL   string `json:"target_url"`
}

// Statuses returns sha's statuses on repo, newest (highest ID) first.
func (g *Gitea) Statuses(ctx context.Context, repo, sha string) ([]CommitStatus, error) {
	var out []CommitStatus
	err := g.api(ctx, http.MethodGet, "/repos/"+GiteaUser+"/"+repo+"/statuses/"+sha+"?limit=50", nil, &out)
	slices.SortFunc(out, func(a, b CommitStatus) int { return cmp.Compare(b.ID, a.ID) })
	return out, err
}

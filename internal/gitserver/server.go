// Package gitserver serves Git repositories over smart HTTP on a loopback port,
// backed by the real `git http-backend` under net/http/cgi, with push enabled
// and optional HTTP authentication. Tests and the demo use it as "GitLab".
package gitserver

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Server.
type Options struct {
	// Root is the folder holding the bare repositories (NAME.git).
	// Default: a new temporary directory.
	Root string
	// Username and Password, when Password is set, require HTTP basic auth.
	Username, Password string
	// Token, when set, is accepted as a bearer token (Authorization: Bearer T)
	// or as the password of basic auth with any username, like GitLab's tokens.
	Token string
	// Addr is the listen address. Default: 127.0.0.1:0 (a free loopback port).
	Addr string
	// MaxBodyBytes caps a request body (a push). Default: 256 MiB.
	MaxBodyBytes int64
}

// Server is a running smart-HTTP Git server.
type Server struct {
	opts     Options
	git      string
	listener net.Listener
	srv      *http.Server
	url      string
	pushes   atomic.Int64
	// advertisements counts ref advertisements for fetching (ls-remote).
	advertisements atomic.Int64
	mu             sync.Mutex
	down           bool
	hang           chan struct{} // non-nil: requests wait for it to close
	token          string        // the accepted token (Options.Token, then SetToken)
}

// validRepoName restricts repository names to a safe subset (no "..").
var validRepoName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]*(/[A-Za-z0-9_][A-Za-z0-9._-]*)*$`)

// Start listens and serves until Stop.
func Start(opts Options) (*Server, error) {
	git, err := exec.LookPath("git")
	if err != nil {
		return nil, fmt.Errorf("gitserver needs the git command (apt-get install git): %w", err)
	}
	if opts.Root == "" {
		if opts.Root, err = os.MkdirTemp("", "keyless-git-"); err != nil {
			return nil, fmt.Errorf("creating repo root: %w", err)
		}
	}
	if opts.Root, err = filepath.Abs(opts.Root); err != nil {
		return nil, fmt.Errorf("resolving repo root: %w", err)
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.MaxBodyBytes == 0 {
		opts.MaxBodyBytes = 256 << 20
	}
	l, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", opts.Addr, err)
	}
	s := &Server{opts: opts, git: git, listener: l, url: "http://" + l.Addr().String(), token: opts.Token}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(l) }()
	return s, nil
}

// URL returns the base URL (http://127.0.0.1:PORT).
func (s *Server) URL() string { return s.url }

// RepoURL returns the clone URL of repository name (http://…/name.git).
func (s *Server) RepoURL(name string) string { return s.url + "/" + name + ".git" }

// Root returns the folder holding the bare repositories.
func (s *Server) Root() string { return s.opts.Root }

// Advertisements returns how many ref advertisements for fetching (the
// ls-remote of a fetch or a poll: GET info/refs?service=git-upload-pack)
// the server answered past authentication.
func (s *Server) Advertisements() int64 { return s.advertisements.Load() }

// Pushes returns how many pushes (receive-pack requests) the server accepted.
func (s *Server) Pushes() int64 { return s.pushes.Load() }

// SetDown makes the server answer 503 to every request (true) or serve again
// (false), to simulate a Git outage without changing the URL.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

// SetHang makes the server accept connections and never answer (true):
// each request waits until SetHang(false) or until its client gives up —
// a Git server that is up but stuck. SetHang(false) releases them all.
func (s *Server) SetHang(hang bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case hang && s.hang == nil:
		s.hang = make(chan struct{})
	case !hang && s.hang != nil:
		close(s.hang)
		s.hang = nil
	}
}

// SetToken replaces the accepted token (Options.Token): the old one is
// refused from now on, as after a credential rotation at the forge.
func (s *Server) SetToken(token string) {
	s.mu.Lock()
	s.token = token
	s.mu.Unlock()
}

// Stop closes the listener and waits up to 5 s for requests in flight.
func (s *Server) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second) //nolint:forbidigo // Stop runs from test cleanup, which has no context left
	defer cancel()
	_ = s.srv.Shutdown(ctx)
}

// CreateRepo initialises an empty bare repository NAME.git whose HEAD is
// refs/heads/<defaultBranch> (default "main") and which accepts pushes.
func (s *Server) CreateRepo(ctx context.Context, name, defaultBranch string) error {
	if !validRepoName.MatchString(name) || strings.Contains(name, "..") {
		return fmt.Errorf("invalid repository name %q", name)
	}
	if defaultBranch == "" {
		defaultBranch = "main"
	}
	dir := filepath.Join(s.opts.Root, name+".git")
	if _, err := os.Stat(dir); err == nil {
		return fmt.Errorf("repository %q already exists", name)
	}
	for _, args := range [][]string{
		{"init", "--quiet", "--bare", "--initial-branch=" + defaultBranch, dir},
		{"-C", dir, "config", "http.receivepack", "true"},
		{"-C", dir, "config", "receive.denyNonFastForwards", "true"},
		// Like GitHub and GitLab: a client may fetch one commit by its SHA.
		{"-C", dir, "config", "uploadpack.allowReachableSHA1InWant", "true"},
	} {
		if out, err := exec.CommandContext(ctx, s.git, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// ServeHTTP authenticates the request and hands it to git http-backend.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	down, hang, token := s.down, s.hang, s.token
	s.mu.Unlock()
	if hang != nil {
		select {
		case <-hang:
		case <-r.Context().Done():
			return
		}
	}
	if down {
		http.Error(w, "git server is down", http.StatusServiceUnavailable)
		return
	}
	user, ok := s.authenticate(r, token)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="keyless-git"`)
		http.Error(w, "authentication required", http.StatusUnauthorized)
		return
	}
	if strings.Contains(r.URL.Path, "..") {
		http.Error(w, "bad path", http.StatusBadRequest)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
	if user == "" {
		user = "anonymous"
	}
	h := &cgi.Handler{
		Path: s.git,
		Args: []string{"http-backend"},
		Env: []string{
			"GIT_PROJECT_ROOT=" + s.opts.Root,
			"GIT_HTTP_EXPORT_ALL=1",
			"REMOTE_USER=" + user,
			"GIT_CONFIG_NOSYSTEM=1",
			"HOME=" + s.opts.Root,
		},
		InheritEnv: []string{"PATH"},
	}
	if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/info/refs") && r.URL.Query().Get("service") == "git-upload-pack" {
		s.advertisements.Add(1)
	}
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-receive-pack") {
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if rec.status == 0 || rec.status == http.StatusOK {
			s.pushes.Add(1)
		}
		return
	}
	h.ServeHTTP(w, r)
}

// authenticate returns the user name and whether the request may proceed.
func (s *Server) authenticate(r *http.Request, token string) (string, bool) {
	if s.opts.Password == "" && token == "" {
		return "", true
	}
	if token != "" {
		if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && equal(bearer, token) {
			return "token", true
		}
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return "", false
	}
	if token != "" && equal(pass, token) {
		return user, true
	}
	if s.opts.Password != "" && equal(user, s.opts.Username) && equal(pass, s.opts.Password) {
		return user, true
	}
	return "", false
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// File returns path's content at rev (a commit, branch or tag) in repo,
// read with git show from the server's own copy.
func (s *Server) File(ctx context.Context, repo, rev, path string) (string, error) {
	if !validRepoName.MatchString(repo) || strings.Contains(repo, "..") || strings.HasPrefix(rev, "-") {
		return "", fmt.Errorf("invalid repository %q or revision %q", repo, rev)
	}
	out, err := exec.CommandContext(ctx, s.git, "-C", filepath.Join(s.opts.Root, repo+".git"), "show", rev+":"+path).Output() //nolint:gosec // a test server's own repository
	if err != nil {
		return "", fmt.Errorf("git show %s:%s: %w", rev, path, err)
	}
	return string(out), nil
}

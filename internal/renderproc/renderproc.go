// Package renderproc runs each render in a child process of the same binary,
// under limits one render cannot exceed: memory (RLIMIT_DATA and the Go
// memory limit), CPU and wall time, output size, no core files and no file
// writes. Go cannot cap one goroutine's memory, so a render bomb in one
// tenant's repository would otherwise take the whole shared controller down;
// here it ends one child with a *render.LimitError and nothing else notices.
package renderproc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/keyless-cd/keyless/internal/render"
)

// EnvWorker is the environment variable that, set to "1" in a child's
// environment, makes ServeIfWorker serve one render request on stdin instead
// of running the program.
const EnvWorker = "KEYLESS_RENDER_WORKER"

// Environment carrying the limits to the child (set before it reads anything).
const (
	envMemory = "KEYLESS_RENDER_MEMORY"
	envCPU    = "KEYLESS_RENDER_CPU_SECONDS"
)

// Defaults of Options.
const (
	DefaultMemoryLimit    int64 = 512 << 20
	DefaultTimeout              = 60 * time.Second
	DefaultMaxOutputBytes int64 = 64 << 20
	DefaultConcurrency          = 2
)

// Options configure a Runner. Zero fields take the documented defaults.
type Options struct {
	// Executable is the program started as the render process; it must call
	// ServeIfWorker first thing in main (keyless does; tests call it from
	// TestMain). Default: this process's own executable.
	Executable string
	// MemoryLimit caps the render process's heap (RLIMIT_DATA; the Go runtime
	// is told 3/4 of it as a soft limit). Default 512 MiB.
	MemoryLimit int64
	// Timeout caps a render's wall time (the child is killed) and, rounded
	// up, its CPU time (RLIMIT_CPU). Default 60s.
	Timeout time.Duration
	// MaxOutputBytes caps the rendered objects a child may send back.
	// Default 64 MiB.
	MaxOutputBytes int64
	// Concurrency bounds the render processes running at once. Default 2.
	Concurrency int
	// Spare keeps one render process started and waiting, so a render does
	// not wait for a process to start (about 50 ms on 2 cores, more under
	// load). It is started when a render ends and no other runs (not during
	// a burst). The controller sets it; a one-shot CLI render does not.
	Spare bool
}

// Runner renders in child processes. It is safe for concurrent use.
type Runner struct {
	opts  Options
	sem   chan struct{}
	spare chan *child
}

// New returns a Runner with opts' defaults filled in.
func New(opts Options) (*Runner, error) {
	if opts.Executable == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("finding the render executable: %w", err)
		}
		opts.Executable = exe
	}
	if opts.MemoryLimit == 0 {
		opts.MemoryLimit = DefaultMemoryLimit
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxOutputBytes == 0 {
		opts.MaxOutputBytes = DefaultMaxOutputBytes
	}
	if opts.Concurrency == 0 {
		opts.Concurrency = DefaultConcurrency
	}
	return &Runner{opts: opts, sem: make(chan struct{}, opts.Concurrency), spare: make(chan *child, 1)}, nil
}

// request is what the parent sends a child on stdin.
type request struct {
	Options render.Options `json:"options"`
}

// response is what a child writes on stdout.
type response struct {
	Kind     render.Kind  `json:"kind,omitempty"`
	Objects  []wireObject `json:"objects,omitempty"`
	Warnings []string     `json:"warnings,omitempty"`
	// Decrypted names the SOPS files decrypted (never their content).
	Decrypted []string   `json:"decrypted,omitempty"`
	Error     *wireError `json:"error,omitempty"`
}

type wireObject struct {
	Source string          `json:"source,omitempty"`
	Object json.RawMessage `json:"object"`
}

// Render renders opts in a new child process and waits for it. Errors of
// the render keep their types across the process boundary (errors.Is with
// render.ErrLimit, render.ErrRemoteReference, render.ErrOutsideRoot,
// render.ErrSymlinkCycle); a child that exceeded a limit gives a
// *render.LimitError naming the flag.
func (r *Runner) Render(ctx context.Context, opts render.Options) (*render.Result, error) {
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-r.sem }()

	root, err := filepath.Abs(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("render root: %w", err)
	}
	opts.Root = root
	req, err := json.Marshal(request{Options: opts})
	if err != nil {
		return nil, fmt.Errorf("render request: %w", err)
	}
	c, err := r.take()
	if err != nil {
		return nil, err
	}
	res, err := r.run(ctx, c, opts.Path, req)
	// Start the next spare once no other render is running: during a burst
	// of renders an extra process start would only compete for the CPU.
	if r.opts.Spare && len(r.sem) == 1 && len(r.spare) == 0 {
		go r.refill()
	}
	return res, err
}

// child is a started render process waiting for its request on stdin.
type child struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	stdout  *capped
	stderr  *capped
	full    chan struct{}
	started time.Time
}

// maxSpareAge retires a spare child that waited this long unused.
const maxSpareAge = 10 * time.Minute

// start starts a render process; it applies its limits and waits for a request.
func (r *Runner) start() (*child, error) {
	cmd := exec.Command(r.opts.Executable)
	cmd.Env = r.childEnv()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	full := make(chan struct{})
	var once sync.Once
	c := &child{cmd: cmd, stdin: stdin, full: full, started: time.Now(),
		stdout: &capped{limit: r.opts.MaxOutputBytes, onFull: func() { once.Do(func() { close(full) }) }},
		stderr: &capped{limit: 64 << 10}}
	cmd.Stdout, cmd.Stderr = c.stdout, c.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the render process %s: %w", r.opts.Executable, err)
	}
	return c, nil
}

// kill ends the child and its process group.
func (c *child) kill() {
	if c.cmd.Process != nil {
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	}
}

// take returns the spare child when there is a fresh one, else a new one.
func (r *Runner) take() (*child, error) {
	select {
	case c := <-r.spare:
		if time.Since(c.started) < maxSpareAge {
			return c, nil
		}
		c.kill()
		_ = c.cmd.Wait()
	default:
	}
	return r.start()
}

// refill starts a spare child, so the next render does not wait for a
// process to start and initialise (most of a small render's cost).
func (r *Runner) refill() {
	c, err := r.start()
	if err != nil {
		return
	}
	select {
	case r.spare <- c:
	default:
		c.kill()
		_ = c.cmd.Wait()
	}
}

// Close ends the spare child, if any.
func (r *Runner) Close() {
	for {
		select {
		case c := <-r.spare:
			c.kill()
			_ = c.cmd.Wait()
		default:
			return
		}
	}
}

// run sends req to c and waits for its answer within the limits.
func (r *Runner) run(ctx context.Context, c *child, path string, req []byte) (*render.Result, error) {
	timer := time.NewTimer(r.opts.Timeout)
	defer timer.Stop()
	done := make(chan error, 1)
	go func() {
		_, werr := c.stdin.Write(req)
		_ = c.stdin.Close()
		err := c.cmd.Wait()
		if err == nil && werr != nil {
			err = werr
		}
		done <- err
	}()
	var runErr error
	var timedOut bool
	select {
	case runErr = <-done:
	case <-timer.C:
		timedOut = true
		c.kill()
		runErr = <-done
	case <-c.full:
		c.kill()
		runErr = <-done
	case <-ctx.Done():
		c.kill()
		if err := <-done; err != nil {
			return nil, fmt.Errorf("render stopped (%w): %w", ctx.Err(), err)
		}
		return nil, ctx.Err()
	}
	switch {
	case c.stdout.full:
		return nil, &render.LimitError{Limit: "--render-max-output", Where: path,
			Detail: fmt.Sprintf("the render produced more than %d bytes of objects", r.opts.MaxOutputBytes)}
	case timedOut:
		return nil, &render.LimitError{Limit: "--render-timeout", Where: path,
			Detail: fmt.Sprintf("the render took longer than %s", r.opts.Timeout)}
	case runErr != nil:
		return nil, r.crashError(path, c.cmd.ProcessState, c.stderr.String(), runErr)
	}
	var resp response
	if err := json.Unmarshal(c.stdout.Bytes(), &resp); err != nil {
		return nil, fmt.Errorf("render process answered something unreadable: %w", err)
	}
	if resp.Error != nil {
		return nil, resp.Error.toError()
	}
	return decodeResult(resp)
}

func (r *Runner) childEnv() []string {
	cpu := int64((r.opts.Timeout + time.Second - 1) / time.Second)
	env := []string{
		EnvWorker + "=1",
		envMemory + "=" + strconv.FormatInt(r.opts.MemoryLimit, 10),
		envCPU + "=" + strconv.FormatInt(cpu, 10),
		"GOMEMLIMIT=" + strconv.FormatInt(r.opts.MemoryLimit/4*3, 10),
		"GOTRACEBACK=single",
		// Nothing at render time may reach the network; a stray HTTP client
		// that honours the proxy variables fails at once.
		"HTTP_PROXY=http://127.0.0.1:9", "HTTPS_PROXY=http://127.0.0.1:9", "NO_PROXY=",
		"HOME=/nonexistent",
	}
	if p, ok := os.LookupEnv("PATH"); ok {
		env = append(env, "PATH="+p)
	}
	return env
}

// crashError explains a child that died: killed for CPU time, out of
// memory, a stack overflow, or anything else (with the tail of stderr).
func (r *Runner) crashError(path string, st *os.ProcessState, stderr string, runErr error) error {
	if st != nil {
		if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() && (ws.Signal() == syscall.SIGXCPU || ws.Signal() == syscall.SIGKILL) {
			return &render.LimitError{Limit: "--render-timeout", Where: path,
				Detail: fmt.Sprintf("the render used more than %s of CPU time", r.opts.Timeout)}
		}
		if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGXFSZ {
			return &render.LimitError{Limit: "no file writes", Where: path, Detail: "the render tried to write a file"}
		}
	}
	// The Go runtime's own last words are the only account of these deaths.
	switch {
	case strings.Contains(stderr, "out of memory") || strings.Contains(stderr, "cannot allocate memory"):
		return &render.LimitError{Limit: "--render-memory-limit", Where: path,
			Detail: fmt.Sprintf("the render needed more than %d MiB of memory", r.opts.MemoryLimit>>20)}
	case strings.Contains(stderr, "stack exceeds") || strings.Contains(stderr, "stack overflow"):
		return &render.LimitError{Limit: "stack size", Where: path,
			Detail: "the render recursed too deep (a template or symlink loop?)"}
	}
	return fmt.Errorf("render process failed (%w): %s", runErr, lastLines(stderr, 5))
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[:n] // the first lines say what went wrong; the rest is a trace
	}
	return strings.Join(lines, " | ")
}

// capped keeps at most limit bytes; past it, it calls onFull (to kill the
// child) and drops the rest.
type capped struct {
	buf    bytes.Buffer // not embedded: its ReadFrom would bypass the cap
	limit  int64
	full   bool
	onFull func()
}

func (c *capped) Write(p []byte) (int, error) {
	if c.full {
		return len(p), nil
	}
	if int64(c.buf.Len()+len(p)) > c.limit {
		c.full = true
		if c.onFull != nil {
			c.onFull()
		}
		return len(p), nil
	}
	return c.buf.Write(p)
}

// Bytes returns what was kept.
func (c *capped) Bytes() []byte { return c.buf.Bytes() }

// String returns what was kept, as text.
func (c *capped) String() string { return c.buf.String() }

var _ io.Writer = (*capped)(nil)

// ErrWorker is returned (wrapped) for a render error the child reported
// that has no more specific type.
var ErrWorker = errors.New("render failed")

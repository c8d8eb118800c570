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
	"syscall"
	"time"

	"github.com/keyless-cd/keyless/internal/readset"
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

// response is what a child writes on stdout. The parent decodes it field
// by field (decodeOutput): a new field needs its case there.
type response struct {
	Kind     render.Kind  `json:"kind,omitempty"`
	Objects  []wireObject `json:"objects,omitempty"`
	Warnings []string     `json:"warnings,omitempty"`
	// Decrypted names the SOPS files decrypted (never their content).
	Decrypted []string `json:"decrypted,omitempty"`
	// Inputs are the paths the render used (render.Result.Inputs).
	Inputs []readset.Input `json:"inputs,omitempty"`
	Error  *wireError      `json:"error,omitempty"`
}

type wireObject struct {
	Source string          `json:"source,omitempty"`
	Object json.RawMessage `json:"object"`
}

// Render renders opts in a new child process and waits for it. Errors of
// the render keep their types across the process boundary (errors.Is with
// render.ErrLimit, render.ErrRemoteReference, render.ErrOutsideRoot,
// render.ErrSymlinkCycle); a child that exceeded a limit gives a
// *render.LimitError naming the flag, and one killed by something else (the
// OOM killer of the container's memory cgroup) a *KilledError.
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
	cmd   *exec.Cmd
	stdin io.WriteCloser
	// stdout is the read end of the child's stdout, decoded as it arrives.
	stdout  *os.File
	stderr  *capped
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
	// The child writes straight into a pipe the parent decodes from, with
	// no copy of the whole output in between (see decodeOutput).
	stdout, w, err := os.Pipe()
	if err != nil {
		_ = stdin.Close()
		return nil, fmt.Errorf("render process output: %w", err)
	}
	c := &child{cmd: cmd, stdin: stdin, stdout: stdout, started: time.Now(), stderr: &capped{limit: 64 << 10}}
	cmd.Stdout, cmd.Stderr = w, c.stderr
	cmd.SysProcAttr = childProcAttr()
	cmd.WaitDelay = time.Second
	err = cmd.Start()
	_ = w.Close() // the child holds its own copy
	if err != nil {
		_ = stdout.Close()
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

// discard ends a child that will serve no render.
func (c *child) discard() {
	c.kill()
	_ = c.cmd.Wait()
	_ = c.stdout.Close()
}

// take returns the spare child when there is a fresh one, else a new one.
func (r *Runner) take() (*child, error) {
	select {
	case c := <-r.spare:
		if time.Since(c.started) < maxSpareAge {
			return c, nil
		}
		c.discard()
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
		c.discard()
	}
}

// Close ends the spare child, if any.
func (r *Runner) Close() {
	for {
		select {
		case c := <-r.spare:
			c.discard()
		default:
			return
		}
	}
}

// run sends req to c and waits for its answer within the limits.
func (r *Runner) run(ctx context.Context, c *child, path string, req []byte) (*render.Result, error) {
	timer := time.NewTimer(r.opts.Timeout)
	defer timer.Stop()
	out := newOutputReader(c.stdout, r.opts.MaxOutputBytes)
	decoded := make(chan output, 1)
	go func() {
		o := decodeOutput(out)
		_, _ = io.Copy(io.Discard, out) // anything after the answer, still under the cap
		decoded <- o
	}()
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
	case <-out.full:
		c.kill()
		runErr = <-done
	case <-ctx.Done():
		c.kill()
		err := <-done
		c.collect(decoded)
		if err != nil {
			return nil, fmt.Errorf("render stopped (%w): %w", ctx.Err(), err)
		}
		return nil, ctx.Err()
	}
	o := c.collect(decoded)
	switch {
	case out.over():
		return nil, &render.LimitError{Limit: "--render-max-output", Where: path,
			Detail: fmt.Sprintf("the render produced more than %d bytes of objects", r.opts.MaxOutputBytes)}
	case timedOut:
		return nil, &render.LimitError{Limit: "--render-timeout", Where: path,
			Detail: fmt.Sprintf("the render took longer than %s", r.opts.Timeout)}
	case runErr != nil:
		return nil, r.crashError(path, c.cmd.ProcessState, c.stderr.String(), runErr)
	case o.err != nil:
		return nil, fmt.Errorf("render process answered something unreadable: %w", o.err)
	case o.failure != nil:
		return nil, o.failure.toError()
	}
	return o.result, nil
}

// collect waits for the decoding of c's output once c has ended: its pipe
// closes with it. Should a descendant still hold the pipe open, it stops
// reading after the same grace Wait gives (cmd.WaitDelay).
func (c *child) collect(decoded <-chan output) output {
	defer func() { _ = c.stdout.Close() }()
	select {
	case o := <-decoded:
		return o
	case <-time.After(c.cmd.WaitDelay):
		_ = c.stdout.Close()
		return <-decoded
	}
}

func (r *Runner) childEnv() []string {
	cpu := int64(r.cpuLimit() / time.Second)
	env := []string{
		EnvWorker + "=1",
		envMemory + "=" + strconv.FormatInt(r.opts.MemoryLimit, 10),
		envCPU + "=" + strconv.FormatInt(cpu, 10),
		"GOMEMLIMIT=" + strconv.FormatInt(r.goMemLimit(), 10),
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

// cpuLimit is the child's RLIMIT_CPU: Timeout rounded up to a second.
func (r *Runner) cpuLimit() time.Duration {
	return (r.opts.Timeout + time.Second - 1) / time.Second * time.Second
}

// goMemLimit is the child's GOMEMLIMIT: 3/4 of MemoryLimit, so the Go
// runtime collects hard before RLIMIT_DATA fails an allocation.
func (r *Runner) goMemLimit() int64 { return r.opts.MemoryLimit / 4 * 3 }

// capped keeps the first limit bytes written to it and drops the rest.
type capped struct {
	buf   bytes.Buffer // not embedded: its ReadFrom would bypass the cap
	limit int64
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.limit - int64(c.buf.Len()); room < int64(len(p)) {
		_, _ = c.buf.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return c.buf.Write(p)
}

// String returns what was kept, as text.
func (c *capped) String() string { return c.buf.String() }

var _ io.Writer = (*capped)(nil)

// ErrWorker is returned (wrapped) for a render error the child reported
// that has no more specific type.
var ErrWorker = errors.New("render failed")

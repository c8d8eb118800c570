package renderproc

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/keyless-cd/keyless/internal/render"
)

// KilledError is a render process ended by a signal neither keyless nor one
// of its limits sent — in a container, most often the kernel's OOM killer,
// when the container's memory limit is reached before the render's own
// --render-memory-limit. Decide it with errors.As. It is not a
// *render.LimitError: the render stayed inside every limit keyless set, and
// the same render may pass when fewer run beside it.
type KilledError struct {
	// Where is the rendered path.
	Where string
	// Signal is the signal that ended the process (SIGKILL from the OOM killer).
	Signal syscall.Signal
	// PeakBytes is the process's peak resident memory (from its rusage).
	PeakBytes int64
	// MemoryLimit and Concurrency are the Runner's --render-memory-limit and
	// the number of renders it runs at once, for the advice in the message.
	MemoryLimit int64
	Concurrency int
}

// Error names the path, the signal and the peak memory, and for SIGKILL
// what to change.
func (e *KilledError) Error() string {
	msg := fmt.Sprintf("render process killed (%s) at %d MiB resident, by none of keyless's limits", unix.SignalName(e.Signal), e.PeakBytes>>20)
	if e.Signal == syscall.SIGKILL {
		msg += fmt.Sprintf(" — killed: memory of the container? %d renders × --render-memory-limit (%d MiB) + the controller's own must fit in it: "+
			"raise the container's memory limit or lower --render-memory-limit", e.Concurrency, e.MemoryLimit>>20)
	}
	if e.Where == "" {
		return msg
	}
	return e.Where + ": " + msg
}

// crashSignals end a process that faulted or aborted by itself; any other
// signal was sent to it.
var crashSignals = map[syscall.Signal]bool{
	syscall.SIGSEGV: true, syscall.SIGBUS: true, syscall.SIGABRT: true, syscall.SIGILL: true,
	syscall.SIGFPE: true, syscall.SIGTRAP: true, syscall.SIGSYS: true,
}

// crashError explains a child that ended on its own or was killed by
// something other than the parent (the parent's own kills, for the wall
// deadline, the output cap or a cancelled context, are decided before).
// It decides from the exit status and the child's rusage first, and from
// the Go runtime's last words on stderr only after:
//   - SIGXFSZ: a file write (RLIMIT_FSIZE=0);
//   - SIGXCPU, or SIGKILL once its CPU time reached RLIMIT_CPU: --render-timeout;
//   - any other signal sent to it (SIGKILL from the OOM killer): *KilledError;
//   - the runtime's "out of memory", or a stack overflow: the memory or stack limit;
//   - any other crash at a peak resident memory of at least the Go memory
//     limit given to the child (3/4 of --render-memory-limit): the memory
//     limit as well. Near RLIMIT_DATA the runtime does not always die in its
//     own "out of memory": a failed allocation inside the garbage collector
//     may end in a SIGSEGV with a stack dump instead;
//   - else: the first lines of stderr.
func (r *Runner) crashError(path string, st *os.ProcessState, stderr string, runErr error) error {
	var (
		sig  syscall.Signal
		peak int64
		cpu  time.Duration
	)
	if st != nil { // nil only when Wait failed: nothing to decide from
		if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			sig = ws.Signal()
		}
		peak, cpu = peakBytes(st), st.UserTime()+st.SystemTime()
	}
	switch {
	case sig == syscall.SIGXFSZ:
		return &render.LimitError{Limit: "no file writes", Where: path, Detail: "the render tried to write a file"}
	case sig == syscall.SIGXCPU || sig == syscall.SIGKILL && cpu >= r.cpuLimit()-cpuSlack(r.cpuLimit()):
		return &render.LimitError{Limit: "--render-timeout", Where: path,
			Detail: fmt.Sprintf("the render used more than %s of CPU time", r.opts.Timeout)}
	case sig != 0 && !crashSignals[sig]:
		return &KilledError{Where: path, Signal: sig, PeakBytes: peak, MemoryLimit: r.opts.MemoryLimit, Concurrency: r.opts.Concurrency}
	case strings.Contains(stderr, "out of memory") || strings.Contains(stderr, "cannot allocate memory"):
		return r.memoryError(path, "")
	case strings.Contains(stderr, "stack exceeds") || strings.Contains(stderr, "stack overflow"):
		return &render.LimitError{Limit: "stack size", Where: path,
			Detail: "the render recursed too deep (a template or symlink loop?)"}
	case peak >= r.goMemLimit():
		return r.memoryError(path, fmt.Sprintf(" (it crashed at %d MiB resident: %s)", peak>>20, firstLine(stderr, runErr)))
	}
	return fmt.Errorf("%s: render process failed (%w): %s", path, runErr, lastLines(stderr, 5))
}

// cpuSlack is how far below limit the CPU time of a process killed by
// RLIMIT_CPU may be reported: the kernel kills on its precise runtime,
// while the rusage it reports is tick-sampled and scaled (measured up to
// 30 ms short of a 1 s limit on a loaded machine). 5% of the limit, at
// least 100 ms: another killer's SIGKILL that close to the limit is taken
// for the limit.
func cpuSlack(limit time.Duration) time.Duration {
	return max(100*time.Millisecond, limit/20)
}

func (r *Runner) memoryError(path, how string) error {
	return &render.LimitError{Limit: "--render-memory-limit", Where: path,
		Detail: fmt.Sprintf("the render needed more than %d MiB of memory%s", r.opts.MemoryLimit>>20, how)}
}

// peakBytes is st's peak resident memory (ru_maxrss: KiB on Linux, bytes
// on macOS).
func peakBytes(st *os.ProcessState) int64 {
	if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
		return int64(ru.Maxrss) * maxRSSUnit //nolint:unconvert // Maxrss is int32 on 32-bit platforms
	}
	return 0
}

// maxFirstLine bounds the line of a crash quoted in an error.
const maxFirstLine = 200

// firstLine is what a crashed process said first (what went wrong, not its
// stack dump), or its exit status when it said nothing.
func firstLine(stderr string, runErr error) string {
	line, _, _ := strings.Cut(strings.TrimSpace(stderr), "\n")
	if line == "" {
		return runErr.Error()
	}
	if len(line) > maxFirstLine {
		line = line[:maxFirstLine] + "…"
	}
	return line
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[:n] // the first lines say what went wrong; the rest is a trace
	}
	return strings.Join(lines, " | ")
}

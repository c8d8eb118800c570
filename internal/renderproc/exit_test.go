package renderproc

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyless-cd/keyless/internal/render"
)

// Render paths whose child, in this package's test binary, faults (see
// crash): after filling 4/5 of its memory limit, or at once.
const (
	crashPath      = "crash-near-the-memory-limit"
	crashSmallPath = "crash-at-once"
)

func init() { testHook = crash }

// nilInt is dereferenced by crashNearTheLimit.
var nilInt *int

// crash makes the child of a render of crashPath die as Go does when an
// allocation fails inside the garbage collector near RLIMIT_DATA: a SIGSEGV
// at address 0, exit status 2 and a stack dump, without the runtime's "out
// of memory". With crashSmallPath it dies the same way at once.
func crash(opts render.Options) {
	ballast := []byte{0}
	switch opts.Path {
	case crashSmallPath:
	case crashPath:
		limit, err := strconv.ParseInt(os.Getenv(envMemory), 10, 64)
		if err != nil {
			return
		}
		ballast = make([]byte, limit/5*4)
		for i := 0; i < len(ballast); i += 4096 {
			ballast[i] = 1 // resident, page by page
		}
	default:
		return
	}
	ballast[0] = byte(*nilInt)
}

// plant starts the process r's next render will use and returns it, so a
// test knows that render's pid.
func plant(t *testing.T, r *Runner) *child {
	t.Helper()
	c, err := r.start()
	if err != nil {
		t.Fatal(err)
	}
	r.spare <- c
	t.Cleanup(r.Close)
	return c
}

// cpuTicks is the CPU time pid used, in clock ticks (/proc/pid/stat).
func cpuTicks(t *testing.T, pid int) int {
	t.Helper()
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(stat), ") ")
	f := strings.Fields(rest) // from field 3 (state): utime is field 14, stime 15
	utime, _ := strconv.Atoi(f[11])
	stime, _ := strconv.Atoi(f[12])
	return utime + stime
}

// spinning is a chart whose render takes far longer than any test.
var spinning = map[string]string{"cm.yaml": `{{ range until 100000 }}{{ range until 100000 }}{{ end }}{{ end }}`}

// TestRenderKilledFromOutsideIsNotATimeout: a render process killed by
// SIGKILL from outside (as the OOM killer of a container does), well inside
// its CPU time and wall deadline, is reported as killed, naming the memory
// of the container, not as --render-timeout.
func TestRenderKilledFromOutsideIsNotATimeout(t *testing.T) {
	r := newRunner(t, Options{Timeout: time.Minute})
	c := plant(t, r)
	root := writeChart(t, spinning)
	errc := make(chan error, 1)
	go func() {
		_, err := r.Render(t.Context(), render.Options{Root: root, Path: "app", Namespace: "x"})
		errc <- err
	}()
	for cpuTicks(t, c.cmd.Process.Pid) < 30 { // rendering, past its start
		time.Sleep(10 * time.Millisecond)
	}
	if err := syscall.Kill(c.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := <-errc
	t.Log(err)
	var killed *KilledError
	if !errors.As(err, &killed) || killed.Signal != syscall.SIGKILL {
		t.Fatalf("err = %v, want a KilledError for SIGKILL", err)
	}
	if errors.Is(err, render.ErrLimit) {
		t.Errorf("err = %v: reported as one of keyless's limits", err)
	}
	for _, want := range []string{"app: ", "killed (SIGKILL)", "memory of the container", "--render-memory-limit"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// TestCrashNearTheMemoryLimitIsTheMemoryLimit: a child that crashes with a
// SIGSEGV and a stack dump after filling most of its memory is reported as
// over --render-memory-limit, from its peak memory, with the crash's first
// line and not its stack dump.
func TestCrashNearTheMemoryLimitIsTheMemoryLimit(t *testing.T) {
	r := newRunner(t, Options{MemoryLimit: 256 << 20})
	_, err := r.Render(t.Context(), render.Options{Root: t.TempDir(), Path: crashPath})
	t.Log(err)
	var le *render.LimitError
	if !errors.As(err, &le) || le.Limit != "--render-memory-limit" {
		t.Fatalf("err = %v, want a LimitError for --render-memory-limit", err)
	}
	if !strings.Contains(err.Error(), "nil pointer dereference") || strings.Contains(err.Error(), "goroutine ") {
		t.Errorf("error %q: want the crash's first line and no stack dump", err)
	}
}

// TestCrashFarBelowTheMemoryLimitIsACrash: the same crash with most of the
// memory limit unused stays a crash, with its first lines.
func TestCrashFarBelowTheMemoryLimitIsACrash(t *testing.T) {
	r := newRunner(t, Options{MemoryLimit: 256 << 20})
	_, err := r.Render(t.Context(), render.Options{Root: t.TempDir(), Path: crashSmallPath})
	t.Log(err)
	if errors.Is(err, render.ErrLimit) || err == nil || !strings.Contains(err.Error(), "SIGSEGV") {
		t.Fatalf("err = %v, want a crash with its SIGSEGV line", err)
	}
}

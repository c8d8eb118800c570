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
// crash): after filling most of its memory limit, or at once.
const (
	crashPath      = "crash-near-the-memory-limit"
	crashSmallPath = "crash-at-once"
)

func init() { testHook = crash }

// nilInt is dereferenced by crash.
var nilInt *int

// crash makes the child of a render of crashPath die as Go does when an
// allocation fails inside the garbage collector near RLIMIT_DATA: a SIGSEGV
// at address 0, exit status 2 and a stack dump, without the runtime's "out
// of memory". With crashSmallPath it dies the same way at once.
func crash(opts render.Options) {
	ballast := [][]byte{{0}}
	switch opts.Path {
	case crashSmallPath:
	case crashPath:
		// 90% of what RLIMIT_DATA leaves (the runtime maps ~130 MiB of its
		// own at start, mostly never touched), resident page by page.
		limit, _ := strconv.ParseInt(os.Getenv(envMemory), 10, 64)
		for range (limit - vmData()) / 10 * 9 >> 20 {
			mib := make([]byte, 1<<20)
			for i := 0; i < len(mib); i += 4096 {
				mib[i] = 1
			}
			ballast = append(ballast, mib)
		}
	default:
		return
	}
	ballast[0][0] = byte(*nilInt)
}

// vmData is this process's data segment, what RLIMIT_DATA bounds.
func vmData() int64 {
	status, _ := os.ReadFile("/proc/self/status")
	for line := range strings.Lines(string(status)) {
		if kib, ok := strings.CutPrefix(line, "VmData:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(kib), " kB"), 10, 64)
			return n << 10
		}
	}
	return 0
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
	r := newRunner(t, Options{MemoryLimit: 512 << 20})
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

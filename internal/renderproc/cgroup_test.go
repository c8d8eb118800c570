package renderproc

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyless-cd/keyless/internal/render"
)

// memoryCgroup is a memory cgroup made for one test under this process's
// own cgroup: version 2 (memory.max) or version 1 (memory.limit_in_bytes).
type memoryCgroup struct {
	dir string
	v1  bool
}

// newMemoryCgroup makes a memory cgroup limited to limit bytes, without
// swap, removed when the test ends. It skips the test when this machine
// has no memory cgroup this process may make one in.
func newMemoryCgroup(t *testing.T, limit int64) *memoryCgroup {
	t.Helper()
	parent, v1, why := ownMemoryCgroup()
	if parent == "" {
		t.Skipf("no usable memory cgroup: %s", why)
	}
	cg := &memoryCgroup{dir: filepath.Join(parent, "keyless-test-"+strconv.Itoa(os.Getpid())), v1: v1}
	if err := os.Mkdir(cg.dir, 0o755); err != nil {
		t.Skipf("no usable memory cgroup: making one under %s: %v", parent, err)
	}
	t.Cleanup(func() {
		for range 50 { // its last process may take a moment to leave
			if err := os.Remove(cg.dir); err == nil || errors.Is(err, os.ErrNotExist) {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("cgroup %s left behind", cg.dir)
	})
	files := [][2]string{{"memory.max", ""}, {"memory.swap.max", "0"}}
	if v1 {
		files = [][2]string{{"memory.limit_in_bytes", ""}, {"memory.memsw.limit_in_bytes", ""}}
	}
	for i, f := range files {
		val := f[1]
		if val == "" {
			val = strconv.FormatInt(limit, 10)
		}
		err := os.WriteFile(filepath.Join(cg.dir, f[0]), []byte(val), 0)
		if err != nil && (i == 0 || !errors.Is(err, os.ErrNotExist)) { // the swap file exists only with swap accounting
			t.Skipf("no usable memory cgroup: limiting %s: %v", cg.dir, err)
		}
	}
	return cg
}

// ownMemoryCgroup finds where a memory cgroup may be made: beside this
// process's own cgroup v2 (whose parent gives its children the memory
// controller), or inside it when it may give it to its own, else under its
// cgroup v1 memory one; or why nowhere.
func ownMemoryCgroup() (dir string, v1 bool, why string) {
	mounts, err := cgroupMounts()
	if err != nil {
		return "", false, err.Error()
	}
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", false, err.Error()
	}
	why = "no cgroup2 mount with the memory controller and no cgroup v1 memory mount"
	for line := range strings.Lines(string(own)) {
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if m, ok := mounts["cgroup2"]; ok && parts[0] == "0" && parts[1] == "" {
			d, reason := v2Parent(filepath.Join(m.point, strings.TrimPrefix(parts[2], m.root)), m.point)
			if d != "" {
				return d, false, ""
			}
			why = reason
		}
		if m, ok := mounts["memory"]; ok && strings.Contains(","+parts[1]+",", ",memory,") {
			return filepath.Join(m.point, strings.TrimPrefix(parts[2], m.root)), true, ""
		}
	}
	return "", false, why
}

// v2Parent is the cgroup v2 directory under which a child gets the memory
// controller: own's parent when it gives it to its children (own among
// them), else own once it gives it to its own — which a cgroup holding
// processes may do only at the root.
func v2Parent(own, mount string) (dir, why string) {
	hasMemory := func(file string) bool {
		data, _ := os.ReadFile(file)
		return slices.Contains(strings.Fields(string(data)), "memory")
	}
	if own != mount && hasMemory(filepath.Join(filepath.Dir(own), "cgroup.subtree_control")) {
		return filepath.Dir(own), ""
	}
	if !hasMemory(filepath.Join(own, "cgroup.controllers")) {
		return "", "cgroup v2 at " + own + " without the memory controller"
	}
	if err := os.WriteFile(filepath.Join(own, "cgroup.subtree_control"), []byte("+memory"), 0); err != nil {
		return "", "cgroup v2 at " + own + ": giving its children the memory controller: " + err.Error()
	}
	return own, ""
}

type cgroupMount struct{ root, point string }

// cgroupMounts reads this process's cgroup mounts from /proc/self/mountinfo:
// "cgroup2" for the unified hierarchy, "memory" for a v1 memory one.
func cgroupMounts() (map[string]cgroupMount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	mounts := map[string]cgroupMount{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root point options [optional…] - fstype source superoptions
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, fs := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 5 || len(fs) < 3 {
			continue
		}
		m := cgroupMount{root: fields[3], point: fields[4]}
		switch {
		case fs[0] == "cgroup2":
			mounts["cgroup2"] = m
		case fs[0] == "cgroup" && strings.Contains(","+fs[2]+",", ",memory,"):
			mounts["memory"] = m
		}
	}
	return mounts, sc.Err()
}

// add moves pid into the cgroup.
func (cg *memoryCgroup) add(t *testing.T, pid int) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(cg.dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		t.Fatalf("moving %d into %s: %v", pid, cg.dir, err)
	}
}

// oomKills is how many processes the cgroup's OOM killer killed.
func (cg *memoryCgroup) oomKills(t *testing.T) int {
	t.Helper()
	file := "memory.events"
	if cg.v1 {
		file = "memory.oom_control"
	}
	data, err := os.ReadFile(filepath.Join(cg.dir, file))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if n, ok := strings.CutPrefix(strings.TrimSpace(line), "oom_kill "); ok {
			v, _ := strconv.Atoi(n)
			return v
		}
	}
	t.Fatalf("%s has no oom_kill count", file)
	return 0
}

// TestRenderKilledByItsContainersMemory runs a render child inside a real
// memory cgroup whose limit is below --render-memory-limit, as in a
// container sized for less than its renders: the kernel's OOM killer ends
// the child, and the error says so — killed, memory of the container — not
// a timeout nor a render limit.
func TestRenderKilledByItsContainersMemory(t *testing.T) {
	cg := newMemoryCgroup(t, 192<<20)
	r := newRunner(t, Options{MemoryLimit: 512 << 20})
	c := plant(t, r)
	cg.add(t, c.cmd.Process.Pid)
	// 64 MiB, then 128 and 256 MiB of string in turn: past the cgroup, well
	// inside the render's own limit (and its Go memory limit, 384 MiB).
	root := writeChart(t, map[string]string{"cm.yaml": `{{ $s := repeat 1024 "x" }}{{ range until 18 }}{{ $s = print $s $s }}{{ end }}{{ len $s }}`})
	_, err := r.Render(t.Context(), render.Options{Root: root, Path: "app", Namespace: "x"})
	t.Log(err)
	var killed *KilledError
	if !errors.As(err, &killed) || killed.Signal != syscall.SIGKILL {
		t.Fatalf("err = %v, want a KilledError for SIGKILL", err)
	}
	if errors.Is(err, render.ErrLimit) || !strings.Contains(err.Error(), "killed: memory of the container?") {
		t.Errorf("error %q: want killed, memory of the container, and no limit of keyless", err)
	}
	if n := cg.oomKills(t); n == 0 {
		t.Errorf("the cgroup's OOM killer killed nothing: the child died of something else")
	}
}

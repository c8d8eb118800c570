//go:build bench

package bench

import (
	"bytes"
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/keyless-cd/keyless/internal/version"
)

// renderBenchNamespace is the namespace every input is rendered for.
const renderBenchNamespace = "bench"

// renderInput is one chart or kustomization of the reference folder,
// rendered by `keyless render` and by the reference CLI.
type renderInput struct {
	// name is the folder relative to the reference folder.
	name string
	// dir is its absolute path, root the checkout it belongs to (the
	// first folder under the reference folder, as the render-equality
	// test's roots).
	dir, root string
	// chart: a Helm chart (against `helm template`), else a kustomization
	// (against `kustomize build`).
	chart bool
	// enableHelm: the kustomization lists helmCharts (kustomize build
	// --enable-helm, inflated by the reference helm).
	enableHelm bool
	// uses are the folders the kustomization's resources, bases and
	// components name (absolute); base: another input uses this one.
	uses []string
	base bool
}

// kustomizationRefs is what renderInputs reads of a kustomization.
type kustomizationRefs struct {
	Resources  []string `json:"resources"`
	Bases      []string `json:"bases"`
	Components []string `json:"components"`
}

// renderTimes are the wall and CPU times of one tool's runs on one input.
type renderTimes struct {
	wall, cpu []time.Duration
}

// TestBenchRender prints the render start-up figures of docs/benchmarks.md:
// `keyless render` (the built product binary, which renders in a child
// process) against the real `helm template` and `kustomize build` on every
// chart and kustomization of internal/render/testdata/reference that both
// render offline. Each invocation is timed from process start to exit, its
// output going to /dev/null; BENCH_RENDER_RUNS runs of each tool per input,
// keyless and the reference alternating (the first each round swapped
// every round), after one untimed run of each that checks both succeed.
// Run by `make bench-render`; figures are reported, never asserted.
func TestBenchRender(t *testing.T) {
	runs := envInt("BENCH_RENDER_RUNS", 15)
	keyless := toolPath(t, "KEYLESS_BIN", filepath.Join(root(), "bin", "keyless"))
	helm := toolPath(t, "KEYLESS_HELM", filepath.Join(root(), "bin", "tools", "helm"))
	kustomize := toolPath(t, "KEYLESS_KUSTOMIZE", filepath.Join(root(), "bin", "tools", "kustomize"))
	refRoot := filepath.Join(root(), "internal", "render", "testdata", "reference")
	inputs, skipped := renderInputs(t, refRoot)

	// Every tool runs isolated from the user's configuration, as in the
	// render-equality test.
	home := t.TempDir()
	env := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"),
		"XDG_CACHE_HOME=" + filepath.Join(home, "cache"),
		"XDG_CONFIG_HOME=" + filepath.Join(home, "config"),
		"XDG_DATA_HOME=" + filepath.Join(home, "data")}
	loadBefore := loadAverage()
	start := time.Now()

	type result struct {
		in           renderInput
		keyless, ref renderTimes
	}
	var results []result
	for _, in := range inputs {
		kArgs, rBin, rArgs := renderCommands(in, keyless, helm, kustomize)
		if err := runOnce(env, keyless, kArgs, nil); err != nil {
			skipped = append(skipped, fmt.Sprintf("%s: keyless render failed: %v", in.name, err))
			continue
		}
		if err := runOnce(env, rBin, rArgs, nil); err != nil {
			skipped = append(skipped, fmt.Sprintf("%s: %s failed: %v", in.name, filepath.Base(rBin), err))
			continue
		}
		r := result{in: in}
		for i := range runs {
			first, second := func() { timeRun(t, env, keyless, kArgs, &r.keyless) }, func() { timeRun(t, env, rBin, rArgs, &r.ref) }
			if i%2 == 1 {
				first, second = second, first
			}
			first()
			second()
		}
		results = append(results, r)
	}
	elapsed := time.Since(start)

	fmt.Printf("\n## keyless render vs helm template and kustomize build (%s)\n\n", time.Now().UTC().Format("2006-01-02"))
	fmt.Printf("machine: %d CPUs (%s); load average before %s, after %s; the run took %s\n",
		runtime.NumCPU(), cpuModel(), loadBefore, loadAverage(), elapsed.Round(time.Second))
	fmt.Printf("tools: %s (%s), %s, %s; %d runs of each tool per input, wall time from process start to exit, output to /dev/null\n\n",
		keyless, binarySize(keyless), toolVersion(env, helm, "version", "--short"), toolVersion(env, kustomize, "version"), runs)
	fmt.Printf("| input | reference | keyless median / p90 | reference median / p90 | ratio (medians) | CPU median keyless / reference |\n|---|---|---|---|---|---|\n")
	var chartRatios, kustomizeRatios, entryRatios []float64
	for _, r := range results {
		ratio := median(r.keyless.wall).Seconds() / median(r.ref.wall).Seconds()
		ref := "kustomize build"
		if r.in.chart {
			ref = "helm template"
			chartRatios = append(chartRatios, ratio)
		} else {
			if r.in.enableHelm {
				ref += " --enable-helm"
			}
			if r.in.base {
				ref += " (a base of another)"
			} else {
				entryRatios = append(entryRatios, ratio)
			}
			kustomizeRatios = append(kustomizeRatios, ratio)
		}
		fmt.Printf("| %s | %s | %s / %s | %s / %s | %.2f × | %s / %s |\n", r.in.name, ref,
			ms(median(r.keyless.wall)), ms(quantile(r.keyless.wall, 0.9)),
			ms(median(r.ref.wall)), ms(quantile(r.ref.wall, 0.9)), ratio,
			ms(median(r.keyless.cpu)), ms(median(r.ref.cpu)))
	}
	fmt.Println()
	fmt.Printf("- charts: median of the %d ratios keyless render / helm template: **%.2f ×** (range %s)\n", len(chartRatios), medianFloat(chartRatios), floatRange(chartRatios))
	fmt.Printf("- kustomizations: median of the %d ratios keyless render / kustomize build: **%.2f ×** (range %s)\n", len(kustomizeRatios), medianFloat(kustomizeRatios), floatRange(kustomizeRatios))
	fmt.Printf("- kustomizations no other one here uses as a base: median of the %d ratios: **%.2f ×** (range %s)\n", len(entryRatios), medianFloat(entryRatios), floatRange(entryRatios))
	fmt.Println("- CPU is user+system of the process and the children it waited for (keyless's render child; the helm that kustomize --enable-helm runs)")
	for _, s := range skipped {
		fmt.Println("- not measured: " + s)
	}
}

// toolPath is $env, else def; the test stops when it is not a file.
func toolPath(t *testing.T, env, def string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		p = def
	}
	if fi, err := os.Stat(p); err != nil || fi.IsDir() {
		t.Fatalf("%s: no such program (run `make bench-render`, which builds it, or set %s)", p, env)
	}
	return p
}

// renderInputs finds every chart (Chart.yaml) and kustomization under ref,
// leaving out what neither tool can render by itself (library charts,
// kustomize Components) and the copy of podinfo's chart that
// kustomize-helmcharts inflates (measured as podinfo/charts/podinfo).
func renderInputs(t *testing.T, ref string) (inputs []renderInput, skipped []string) {
	t.Helper()
	err := filepath.WalkDir(ref, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		dir := filepath.Dir(path)
		name, _ := filepath.Rel(ref, dir)
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		in := renderInput{name: name, dir: dir, root: filepath.Join(ref, strings.Split(name, string(filepath.Separator))[0])}
		switch d.Name() {
		case "Chart.yaml":
			switch {
			case bytes.Contains(data, []byte("\ntype: library")):
				skipped = append(skipped, name+": a library chart (helm template refuses it)")
				return nil
			case strings.HasPrefix(name, filepath.Join("kustomize-helmcharts", "charts")):
				skipped = append(skipped, name+": a copy of podinfo/charts/podinfo (kustomize-helmcharts's chartHome)")
				return nil
			}
			in.chart = true
		case "kustomization.yaml", "kustomization.yml", "Kustomization":
			if bytes.Contains(data, []byte("kind: Component")) {
				skipped = append(skipped, name+": a kustomize Component (not built by itself)")
				return nil
			}
			in.enableHelm = bytes.Contains(data, []byte("helmCharts:"))
			var refs kustomizationRefs
			if err := yaml.Unmarshal(data, &refs); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			for _, r := range append(append(refs.Resources, refs.Bases...), refs.Components...) {
				in.uses = append(in.uses, filepath.Join(dir, r))
			}
		default:
			return nil
		}
		inputs = append(inputs, in)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, in := range inputs {
		for _, u := range in.uses {
			used[u] = true
		}
	}
	for i := range inputs {
		inputs[i].base = used[inputs[i].dir]
	}
	sort.Slice(inputs, func(i, j int) bool {
		if inputs[i].chart != inputs[j].chart {
			return inputs[i].chart
		}
		return inputs[i].name < inputs[j].name
	})
	return inputs, skipped
}

// renderCommands are the keyless command and the reference one for in,
// rendering alike: the same release name and namespace, Helm's Kubernetes
// version keyless's default, CRDs included and test hooks skipped (as
// keyless renders a chart), helmCharts inflated by the reference helm.
func renderCommands(in renderInput, keyless, helm, kustomize string) (kArgs []string, refBin string, refArgs []string) {
	kArgs = []string{"render", in.dir, "--root", in.root, "-n", renderBenchNamespace}
	if in.chart {
		release := filepath.Base(in.dir)
		kArgs = append(kArgs, "--release-name", release)
		return kArgs, helm, []string{"template", release, in.dir, "--namespace", renderBenchNamespace,
			"--kube-version", version.KubernetesVersion(), "--include-crds", "--skip-tests"}
	}
	refArgs = []string{"build", in.dir}
	if in.enableHelm {
		refArgs = append(refArgs, "--enable-helm", "--helm-command", helm)
	}
	return kArgs, kustomize, refArgs
}

// runOnce runs bin with its output to /dev/null (stderr kept for the error
// when it fails); into, if not nil, gets its wall and CPU time.
func runOnce(env []string, bin string, args []string, into *renderTimes) error {
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	var stderr bytes.Buffer
	if into == nil {
		cmd.Stderr = &stderr
	}
	start := time.Now()
	if err := cmd.Run(); err != nil {
		line, _, _ := strings.Cut(strings.TrimSpace(stderr.String()), "\n")
		return fmt.Errorf("%w: %s", err, line)
	}
	wall := time.Since(start)
	if into != nil {
		into.wall = append(into.wall, wall)
		into.cpu = append(into.cpu, cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime())
	}
	return nil
}

// timeRun runs bin once more, timed; it worked in the untimed run.
func timeRun(t *testing.T, env []string, bin string, args []string, into *renderTimes) {
	t.Helper()
	if err := runOnce(env, bin, args, into); err != nil {
		t.Fatalf("%s %s: %v", filepath.Base(bin), strings.Join(args, " "), err)
	}
}

func sortedDurations(ds []time.Duration) []time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s
}

// median is the middle value (the mean of the two middle ones for an even count).
func median(ds []time.Duration) time.Duration {
	s := sortedDurations(ds)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// quantile is the nearest-rank q-quantile.
func quantile(ds []time.Duration, q float64) time.Duration {
	s := sortedDurations(ds)
	return s[max(0, int(math.Ceil(q*float64(len(s))))-1)]
}

func medianFloat(fs []float64) float64 {
	if len(fs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), fs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func floatRange(fs []float64) string {
	if len(fs) == 0 {
		return "none"
	}
	lo, hi := fs[0], fs[0]
	for _, f := range fs {
		lo, hi = min(lo, f), max(hi, f)
	}
	return fmt.Sprintf("%.2f–%.2f ×", lo, hi)
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	data, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown model"
}

// loadAverage is the 1-, 5- and 15-minute load average of /proc/loadavg.
func loadAverage() string {
	data, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func binarySize(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "?"
	}
	return fmt.Sprintf("%.1f MB", float64(fi.Size())/1e6)
}

// toolVersion is the first line bin prints for args.
func toolVersion(env []string, bin string, args ...string) string {
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		return filepath.Base(bin) + " (version unknown)"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return filepath.Base(bin) + " " + line
}

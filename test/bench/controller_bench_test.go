//go:build bench

// Package bench measures keyless against the local control plane. It is run
// by `make bench-controller`, never by `make test`: figures are reported, not
// asserted.
package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/gitserver"
	keylessinstall "github.com/keyless-cd/keyless/internal/install"
	"github.com/keyless-cd/keyless/internal/localcluster"
	"github.com/keyless-cd/keyless/internal/localcluster/clustertest"
	"github.com/keyless-cd/keyless/internal/version"
)

const (
	ns         = "bench"
	floorNS    = "floor"
	repo       = "bench"
	hookSecret = "bench-webhook-secret-0123456789"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func root() string {
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		dir = filepath.Dir(dir)
	}
}

func appFiles(name, image string) map[string]string {
	return map[string]string{
		"apps/" + name + "/cm.yaml":     "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\ndata:\n  k: v\n",
		"apps/" + name + "/deploy.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: " + name + "\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {app: " + name + "}\n  template:\n    metadata:\n      labels: {app: " + name + "}\n    spec:\n      securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}\n      containers:\n      - name: app\n        securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}\n        image: " + image + "\n",
		"apps/" + name + "/svc.yaml":    "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name + "\nspec:\n  selector: {app: " + name + "}\n  ports:\n  - port: 80\n",
	}
}

// hookAppFiles is an app whose every sync first runs a PreSync migration
// Job with the app's image (Argo CD's annotation; Helm's pre-upgrade maps
// onto the same phase).
func hookAppFiles(name, image string) map[string]string {
	files := appFiles(name, image)
	files["apps/"+name+"/migrate.yaml"] = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: " + name + "-migrate\n  annotations:\n    argocd.argoproj.io/hook: PreSync\nspec:\n  backoffLimit: 0\n  template:\n    spec:\n      restartPolicy: Never\n      securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}\n      containers:\n      - name: migrate\n        securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}\n        image: " + image + "\n"
	return files
}

// grantJobs lets the deployer of ns run Jobs.
func grantJobs(t *testing.T, cs kubernetes.Interface) {
	t.Helper()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "deployer-jobs", Namespace: ns},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"get", "list", "watch", "create", "patch", "update", "delete"}}}}
	if _, err := cs.RbacV1().Roles(ns).Create(t.Context(), role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "deployer-jobs", Namespace: ns},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "deployer-jobs"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "keyless-deployer", Namespace: ns}}}
	if _, err := cs.RbacV1().RoleBindings(ns).Create(t.Context(), binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func p50(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// TestBenchController prints the controller figures of docs/benchmarks.md.
func TestBenchController(t *testing.T) {
	ctx := t.Context()
	apps := envInt("BENCH_APPS", 100)
	idle := envDuration("BENCH_IDLE", 5*time.Minute)
	rounds := envInt("BENCH_ROUNDS", 10)
	// BENCH_SHARDS controllers share the apps: one without --shard owns the
	// unlabelled ones, each other one --shard sN the apps labelled sN.
	shards := max(1, envInt("BENCH_SHARDS", 1))
	// BENCH_INTERVAL is the apps' interval (their periodic pass).
	appInterval := envDuration("BENCH_INTERVAL", time.Minute)
	// BENCH_KCM_QPS raises kube-controller-manager's and kube-scheduler's
	// client rate limit (their defaults, 20 and 50 QPS, bound the floor and
	// keyless alike at 1000 Deployments); 0 keeps the defaults.
	kcmQPS := envInt("BENCH_KCM_QPS", 0)
	// BENCH_IDLE_BASELINE=1 measures the API server's and etcd's CPU over
	// one more idle window with no controller running.
	idleBaseline := envInt("BENCH_IDLE_BASELINE", 1) != 0
	// BENCH_HEAP_PROFILE names a file for controller 0's heap profile,
	// taken when all Applications are Ready (go tool pprof reads it), and
	// FILE.before, taken just before they are created: the growth per
	// Application is `go tool pprof -diff_base FILE.before FILE`.
	heapProfile := os.Getenv("BENCH_HEAP_PROFILE")
	// BENCH_CPU_PROFILE names a file for controller 0's CPU profile over
	// the first BENCH_CPU_PROFILE_SECONDS (20) of the monorepo push.
	cpuProfile := os.Getenv("BENCH_CPU_PROFILE")
	// BENCH_AUDIT_LOG names a file the API server's audit log (every
	// request, Metadata level) is copied to at the end, to count what each
	// Application's syncs asked of it.
	auditCopy := os.Getenv("BENCH_AUDIT_LOG")
	// BENCH_MONOREPO_PUSH=1 adds, after the burst, one push to one
	// folder of the repository every Application reads, announced by a
	// webhook: what it costs when the push triggers them all.
	monorepoPush := envInt("BENCH_MONOREPO_PUSH", 0) != 0
	// BENCH_CONCURRENCY is each controller's --concurrency.
	concurrency := envInt("BENCH_CONCURRENCY", 8)
	dir := t.TempDir()

	var opts localcluster.Options
	if kcmQPS > 0 {
		qps := []string{fmt.Sprintf("--kube-api-qps=%d", kcmQPS), fmt.Sprintf("--kube-api-burst=%d", 2*kcmQPS)}
		opts.ControllerManagerArgs, opts.SchedulerArgs = qps, qps
	}
	c, err := clustertest.StartAudited(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	if auditCopy != "" {
		defer copyFile(t, c.AuditLogPath, auditCopy)
	}
	cs, admin := clients(t, c.Config)
	install(t, c.Config, cs)

	git, err := gitserver.Start(gitserver.Options{Root: filepath.Join(dir, "git")})
	if err != nil {
		t.Fatal(err)
	}
	defer git.Stop()
	if err := git.CreateRepo(ctx, repo, "main"); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for i := range apps {
		for k, v := range appFiles(appName(i), "registry.example.com/app:1") {
			files[k] = v
		}
	}
	for k, v := range appFiles("lat", "registry.example.com/lat:0") {
		files[k] = v
	}
	if _, err := git.Commit(ctx, repo, gitserver.Commit{Files: files, Message: "apps"}); err != nil {
		t.Fatal(err)
	}

	// The controller as its own process and ServiceAccount.
	bin := filepath.Join(dir, "keyless")
	if out, err := exec.Command("go", "build", "-tags", version.BuildTags, "-o", bin, filepath.Join(root(), "cmd", "keyless")).CombinedOutput(); err != nil {
		t.Fatalf("building keyless: %v\n%s", err, out)
	}
	kubeconfig := controllerKubeconfig(t, c.Config, cs, filepath.Join(dir, "controller.kubeconfig"))
	secretFile := filepath.Join(dir, "hook-secret")
	_ = os.WriteFile(secretFile, []byte(hookSecret), 0o600)
	hookAddr := freeAddr(t)
	metricsAddr, pprofAddr := freeAddr(t), freeAddr(t)
	type controllerProc struct {
		shard string
		cmd   *exec.Cmd
		mem   func() (anon, file int)
	}
	var procs []*controllerProc
	for i := range shards {
		args := []string{"controller", "--kubeconfig", kubeconfig, "--namespaces", ns,
			"--health-probe-bind-address", "0", "--concurrency", strconv.Itoa(concurrency),
			"--default-interval", "1m", "--cache-dir", filepath.Join(dir, fmt.Sprintf("cache-%d", i))}
		if i == 0 {
			args = append(args, "--webhook-bind-address", hookAddr, "--webhook-secret-file", secretFile, "--metrics-bind-address", metricsAddr)
			if heapProfile != "" || cpuProfile != "" {
				args = append(args, "--pprof-bind-address", pprofAddr)
			}
		} else {
			args = append(args, "--shard", shardKey(i), "--metrics-bind-address", "0")
		}
		cmd := exec.Command(bin, args...)
		logf, _ := os.Create(filepath.Join(dir, fmt.Sprintf("controller-%d.log", i)))
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() }()
		procs = append(procs, &controllerProc{shard: shardKey(i), cmd: cmd, mem: sampleMemory(t, cmd.Process.Pid)})
	}
	pid := procs[0].cmd.Process.Pid
	// cpuAll is the CPU of every controller so far, alone and with the
	// render processes each started and waited for.
	cpuAll := func() cpuTimes {
		var sum cpuTimes
		for _, p := range procs {
			sum = sum.plus(procCPU(t, p.cmd.Process.Pid))
		}
		return sum
	}

	newApp := func(name string, interval time.Duration) *kv1.Application {
		return &kv1.Application{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: kv1.ApplicationSpec{
				Source:     kv1.ApplicationSource{RepoURL: git.RepoURL(repo), TargetRevision: "main", Path: "apps/" + name},
				SyncPolicy: &kv1.SyncPolicy{Automated: &kv1.AutomatedSyncPolicy{Prune: true, SelfHeal: true}},
				Interval:   &metav1.Duration{Duration: interval},
			},
		}
	}
	isReady := func(a *kv1.Application) bool {
		return apimeta.IsStatusConditionTrue(a.Status.Conditions, kv1.ReadyCondition)
	}
	image := func(name string) string {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return ""
		}
		return d.Spec.Template.Spec.Containers[0].Image
	}

	// Latency app.
	if err := admin.Create(ctx, newApp("lat", time.Hour)); err != nil {
		t.Fatal(err)
	}
	waitUntil(2*time.Minute, func() bool { return image("lat") == "registry.example.com/lat:0" })
	hook := func() {
		body := fmt.Sprintf(`{"object_kind":"push","ref":"refs/heads/main","project":{"git_http_url":%q}}`, git.RepoURL(repo))
		req, _ := http.NewRequest(http.MethodPost, "http://"+hookAddr+"/hooks/gitlab", strings.NewReader(body))
		req.Header.Set("X-Gitlab-Token", hookSecret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	}
	var webhook, drift []time.Duration
	for i := 1; i <= rounds; i++ {
		img := fmt.Sprintf("registry.example.com/lat:w%d", i)
		if _, err := git.Commit(ctx, repo, gitserver.Commit{Files: appFiles("lat", img), Message: "bump"}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		hook()
		if !waitUntil(time.Minute, func() bool { return image("lat") == img }) {
			t.Fatalf("webhook round %d not applied", i)
		}
		webhook = append(webhook, time.Since(start))
	}
	// A sync with one PreSync migration Job: push → Job run → Deployment
	// updated. BENCH_HOOKS=0 leaves it out, to compare the other figures with
	// a commit that has no such phase.
	var hooked []time.Duration
	if envInt("BENCH_HOOKS", 1) != 0 {
		grantJobs(t, cs)
		if _, err := git.Commit(ctx, repo, gitserver.Commit{Files: hookAppFiles("hooked", "registry.example.com/hooked:0"), Message: "hooked"}); err != nil {
			t.Fatal(err)
		}
		if err := admin.Create(ctx, newApp("hooked", time.Hour)); err != nil {
			t.Fatal(err)
		}
		hook() // the repository moved since the last ls-remote
		if !waitUntil(2*time.Minute, func() bool { return image("hooked") == "registry.example.com/hooked:0" }) {
			t.Fatal("the hooked app did not sync")
		}
		for i := 1; i <= rounds; i++ {
			img := fmt.Sprintf("registry.example.com/hooked:w%d", i)
			if _, err := git.Commit(ctx, repo, gitserver.Commit{Files: hookAppFiles("hooked", img), Message: "bump"}); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			hook()
			if !waitUntil(time.Minute, func() bool { return image("hooked") == img }) {
				t.Fatalf("hooked round %d not applied", i)
			}
			hooked = append(hooked, time.Since(start))
		}
	}
	for i := 1; i <= rounds; i++ {
		var start time.Time
		// The Deployment's status moves while the last rollout settles: retry
		// the edit on conflicts for up to 2 s.
		if err := retry.RetryOnConflict(wait.Backoff{Steps: 100, Duration: 20 * time.Millisecond, Factor: 1}, func() error {
			d, err := cs.AppsV1().Deployments(ns).Get(ctx, "lat", metav1.GetOptions{})
			if err != nil {
				return err
			}
			r := int32(3)
			d.Spec.Replicas = &r
			start = time.Now()
			_, err = cs.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{FieldManager: "kubectl-edit"})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if !waitUntil(time.Minute, func() bool {
			d, err := cs.AppsV1().Deployments(ns).Get(ctx, "lat", metav1.GetOptions{})
			return err == nil && *d.Spec.Replicas == 1
		}) {
			t.Fatalf("drift round %d not reverted", i)
		}
		drift = append(drift, time.Since(start))
	}
	// Polling at the minimum interval (5s).
	lat := &kv1.Application{}
	_ = admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: "lat"}, lat)
	patch := client.MergeFrom(lat.DeepCopy())
	lat.Spec.Interval = &metav1.Duration{Duration: 5 * time.Second}
	if err := admin.Patch(ctx, lat, patch); err != nil {
		t.Fatal(err)
	}
	var polling []time.Duration
	for i := 1; i <= max(3, rounds/2); i++ {
		img := fmt.Sprintf("registry.example.com/lat:p%d", i)
		// Push at a random point of the interval, as real pushes arrive.
		time.Sleep(time.Duration(rand.Int64N(int64(5 * time.Second))))
		start := time.Now()
		if _, err := git.Commit(ctx, repo, gitserver.Commit{Files: appFiles("lat", img), Message: "bump"}); err != nil {
			t.Fatal(err)
		}
		if !waitUntil(time.Minute, func() bool { return image("lat") == img }) {
			t.Fatalf("polling round %d not applied", i)
		}
		polling = append(polling, time.Since(start))
	}
	_ = admin.Delete(ctx, lat)

	// The floor: one kubectl apply of the same objects, then wait for all Available.
	floorDir := filepath.Join(dir, "floor")
	for k, v := range files {
		if strings.HasPrefix(k, "apps/lat/") {
			continue
		}
		p := filepath.Join(floorDir, k)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		_ = os.WriteFile(p, []byte(v), 0o644)
	}
	kubectl := filepath.Join(clustertest.Assets(), "kubectl")
	start := time.Now()
	for _, args := range [][]string{
		{"apply", "-n", floorNS, "--server-side", "-R", "-f", floorDir},
		{"wait", "-n", floorNS, "--for=condition=Available", "deployment", "--all", "--timeout=10m"},
	} {
		if out, err := exec.Command(kubectl, append([]string{"--kubeconfig", c.KubeconfigPath}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("kubectl %v: %v\n%s", args, err, out)
		}
	}
	floor := time.Since(start)

	var goroutinesBefore int
	if heapProfile != "" {
		saveHeapProfile(t, pprofAddr, heapProfile+".before")
		goroutinesBefore = goroutines(t, pprofAddr)
	}

	// The Applications at once.
	cpuBurstStart := cpuAll()
	start = time.Now()
	for i := range apps {
		app := newApp(appName(i), appInterval)
		if key := shardKey(i % shards); key != "" {
			app.Labels = map[string]string{kv1.ShardLabel: key}
		}
		if err := admin.Create(ctx, app); err != nil {
			t.Fatal(err)
		}
	}
	if !waitEvery(time.Second, 30*time.Minute, func() bool {
		return countApps(ctx, admin, isReady) == apps
	}) {
		t.Fatal("not all Applications became Ready")
	}
	allReady := time.Since(start)
	cpuBurst := cpuAll().minus(cpuBurstStart)
	burstSteps := stepBreakdown(t, metricsAddr)
	goroutineLine := ""
	if heapProfile != "" {
		saveHeapProfile(t, pprofAddr, heapProfile)
		n := goroutines(t, pprofAddr)
		goroutineLine = fmt.Sprintf("- controller 0 goroutines: %d before the burst, %d when all are Ready (%+.2f per Application)", goroutinesBefore, n, float64(n-goroutinesBefore)/float64(apps))
	}
	monorepoLine := ""
	if monorepoPush {
		monorepoLine = pushToOneFolder(t, pushToOneFolderEnv{git: git, admin: admin, hook: hook, image: image, apps: apps, metricsAddr: metricsAddr, cpu: cpuAll,
			pprofAddr: pprofAddr, cpuProfile: cpuProfile})
	}
	time.Sleep(5 * time.Second)

	// Idle: CPU and writes over the idle window (periodic passes every minute).
	// Only the controller's writes count (the deployer's are made by
	// impersonation under its identity); kube-controller-manager writes on
	// its own schedule.
	controllerWrites := func() int {
		n := 0
		for _, w := range c.Writes(t, ns) {
			if w.User.Username == "system:serviceaccount:keyless-system:keyless-controller" {
				n++
			}
		}
		return n
	}
	pids := c.PIDs()
	planeCPU := func() (api, etcd float64) {
		return cpuSeconds(t, pids["kube-apiserver"]), cpuSeconds(t, pids["etcd"])
	}
	writesBefore := controllerWrites()
	cpuBefore := cpuAll()
	advBefore := git.Advertisements()
	apiBefore, etcdBefore := planeCPU()
	time.Sleep(idle)
	cpuIdle := cpuAll().minus(cpuBefore)
	apiAfter, etcdAfter := planeCPU()
	idleAdvertisements := git.Advertisements() - advBefore
	idleWrites := controllerWrites() - writesBefore
	rss := peakRSS(t, pid)
	var memLines []string
	for i, p := range procs {
		anon, file := p.mem()
		memLines = append(memLines, fmt.Sprintf("controller %d (shard %q): VmHWM %.0f MiB, anonymous peak %.0f MiB, binary pages peak %.0f MiB",
			i, p.shard, float64(peakRSS(t, p.cmd.Process.Pid))/1024, float64(anon)/1024, float64(file)/1024))
	}
	anon, file := procs[0].mem()

	// The same idle window with no controller: what the control plane
	// costs by itself (kube-controller-manager, kwok and the scheduler
	// still run).
	var baseAPI, baseEtcd float64
	if idleBaseline {
		for _, p := range procs {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			_, _ = p.cmd.Process.Wait()
		}
		a0, e0 := planeCPU()
		time.Sleep(idle)
		a1, e1 := planeCPU()
		baseAPI, baseEtcd = a1-a0, e1-e0
	}

	fmt.Printf("\n## keyless controller benchmark (%s)\n\n", time.Now().UTC().Format("2006-01-02"))
	fmt.Printf("settings: %d apps, interval %s, %d controller(s) at --concurrency %d, kube-controller-manager/scheduler QPS %s, idle window %s\n\n",
		apps, appInterval, shards, concurrency, orDefault(kcmQPS), idle)
	fmt.Printf("| figure | keyless | rounds |\n|---|---|---|\n")
	fmt.Printf("| push → applied via webhook, p50 | %s | %d |\n", p50(webhook).Round(time.Millisecond), len(webhook))
	fmt.Printf("| push → applied by polling (interval 5s), p50 | %s | %d |\n", p50(polling).Round(time.Millisecond), len(polling))
	if len(hooked) > 0 {
		fmt.Printf("| push → Deployment updated after one PreSync migration Job (webhook), p50 | %s | %d |\n", p50(hooked).Round(time.Millisecond), len(hooked))
	}
	fmt.Printf("| manual drift → reverted, p50 | %s | %d |\n", p50(drift).Round(time.Millisecond), len(drift))
	fmt.Printf("| %d apps (ConfigMap + Deployment + Service) → all Ready | %s (floor %s, ratio %.2f) | 1 |\n", apps, allReady.Round(100*time.Millisecond), floor.Round(100*time.Millisecond), allReady.Seconds()/floor.Seconds())
	fmt.Printf("| controller 0 peak RSS at %d apps | %.0f MiB (VmHWM): anonymous (heap, stacks) peak %.0f MiB + mapped binary pages peak %.0f MiB | |\n", apps, float64(rss)/1024, float64(anon)/1024, float64(file)/1024)
	fmt.Printf("| idle CPU over %s at %d apps (periodic pass every %s), all controllers | %s | writes in the window: %d |\n", idle, apps, appInterval, cpuIdle, idleWrites)
	fmt.Printf("| CPU of the %d-app burst (creation → all Ready), all controllers | %s | |\n", apps, cpuBurst)
	fmt.Printf("| ref advertisements (ls-remote) in the idle window | %d | one repository, one credential |\n", idleAdvertisements)
	fmt.Printf("| kube-apiserver + etcd CPU in the idle window | %.2f + %.2f CPU-s |", apiAfter-apiBefore, etcdAfter-etcdBefore)
	if idleBaseline && baseAPI+baseEtcd > 0 {
		fmt.Printf(" no controller, same window: %.2f + %.2f CPU-s (ratio %.2f) |\n", baseAPI, baseEtcd, (apiAfter-apiBefore+etcdAfter-etcdBefore)/(baseAPI+baseEtcd))
	} else {
		fmt.Printf(" |\n")
	}
	for _, l := range memLines {
		fmt.Println("- " + l)
	}
	fmt.Println("- controller 0, from its metrics, from its start to all Ready: " + burstSteps)
	for _, l := range []string{goroutineLine, monorepoLine} {
		if l != "" {
			fmt.Println(l)
		}
	}
}

// pushToOneFolderEnv is what pushToOneFolder needs of the benchmark's run.
type pushToOneFolderEnv struct {
	git         *gitserver.Server
	admin       client.Client
	hook        func()
	image       func(name string) string
	apps        int
	metricsAddr string
	// cpu is every controller's CPU so far (cpuAll).
	cpu func() cpuTimes
	// cpuProfile, when set, receives controller 0's CPU profile (served at
	// pprofAddr) over the push's first seconds.
	pprofAddr, cpuProfile string
}

// pushToOneFolder pushes a new image to the first app's folder and
// announces it by a webhook, which triggers every Application on the
// repository; it says how long the changed app and all of them took and
// what controller 0 spent meanwhile.
func pushToOneFolder(t *testing.T, e pushToOneFolderEnv) string {
	ctx := t.Context()
	before := stepSums(t, e.metricsAddr)
	cpuBefore := e.cpu()
	img := "registry.example.com/app:2"
	sha, err := e.git.Commit(ctx, repo, gitserver.Commit{Files: appFiles(appName(0), img), Message: "bump one app"})
	if err != nil {
		t.Fatal(err)
	}
	profiled := make(chan struct{})
	if e.cpuProfile != "" {
		go func() {
			defer close(profiled)
			saveProfile(t, e.pprofAddr, fmt.Sprintf("profile?seconds=%d", envInt("BENCH_CPU_PROFILE_SECONDS", 20)), e.cpuProfile)
		}()
		time.Sleep(200 * time.Millisecond) // the profile has started
	} else {
		close(profiled)
	}
	defer func() { <-profiled }()
	start := time.Now()
	e.hook()
	if !waitUntil(2*time.Minute, func() bool { return e.image(appName(0)) == img }) {
		t.Fatal("the pushed app was not applied")
	}
	one := time.Since(start)
	if !waitEvery(time.Second, 15*time.Minute, func() bool {
		return countApps(ctx, e.admin, func(a *kv1.Application) bool { return a.Status.LastAppliedRevision == sha }) == e.apps
	}) {
		t.Fatal("not every Application reached the pushed commit")
	}
	all := time.Since(start)
	return fmt.Sprintf("- a push to one folder of the repository of %d Applications, by webhook: that app applied after %s, all %d at the new commit after %s; controller 0 meanwhile: %s; CPU of all controllers meanwhile: %s",
		e.apps, one.Round(time.Millisecond), e.apps, all.Round(100*time.Millisecond), formatSteps(stepSums(t, e.metricsAddr), before), e.cpu().minus(cpuBefore))
}

// stepBreakdown scrapes a controller's metrics and says where its reconciles
// spent their time: count and mean of each step's histogram.
func stepBreakdown(t *testing.T, addr string) string {
	return formatSteps(stepSums(t, addr), nil)
}

// stepSums scrapes a controller's metrics: the _sum and _count of each
// step's histogram, by "step_sum" and "step_count" (nil when not scraped).
func stepSums(t *testing.T, addr string) map[string]float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Logf("scraping metrics: %v", err)
		return nil
	}
	defer func() { _ = resp.Body.Close() }()
	sums := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, step := range breakdownSteps {
			for _, suffix := range []string{"_sum", "_count"} {
				if !strings.HasPrefix(line, step.metric+suffix) || !strings.Contains(line, step.match) {
					continue
				}
				f := strings.Fields(line)
				v, _ := strconv.ParseFloat(f[len(f)-1], 64)
				sums[step.name+suffix] += v
			}
		}
	}
	return sums
}

// formatSteps says count and mean of each step in sums, less base (nil:
// from the start).
func formatSteps(sums, base map[string]float64) string {
	if sums == nil {
		return "not scraped"
	}
	var parts []string
	for _, step := range breakdownSteps {
		n, sum := sums[step.name+"_count"]-base[step.name+"_count"], sums[step.name+"_sum"]-base[step.name+"_sum"]
		mean := 0.0
		if n > 0 {
			mean = sum / n
		}
		parts = append(parts, fmt.Sprintf("%s %.0f × %.0f ms (%.0f s)", step.name, n, 1000*mean, sum))
	}
	return strings.Join(parts, ", ")
}

// saveHeapProfile writes the heap profile served at addr (after a GC) to path.
func saveHeapProfile(t *testing.T, addr, path string) {
	saveProfile(t, addr, "heap?gc=1", path)
}

// saveProfile writes the profile served at addr's /debug/pprof/QUERY to path.
func saveProfile(t *testing.T, addr, query, path string) {
	resp, err := http.Get("http://" + addr + "/debug/pprof/" + query)
	if err != nil {
		t.Errorf("profile %s: %v", query, err)
		return
	}
	defer func() { _ = resp.Body.Close() }()
	f, err := os.Create(path)
	if err != nil {
		t.Errorf("profile %s: %v", query, err)
		return
	}
	defer func() { _ = f.Close() }()
	if _, err := io.Copy(f, resp.Body); err != nil {
		t.Errorf("profile %s: %v", query, err)
	}
}

// goroutines is the number of goroutines of the process serving pprof at addr.
func goroutines(t *testing.T, addr string) int {
	resp, err := http.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatalf("goroutine profile: %v", err)
	}
	defer func() { _ = resp.Body.Close() }()
	var n int
	// The first line: "goroutine profile: total N".
	if _, err := fmt.Fscanf(resp.Body, "goroutine profile: total %d", &n); err != nil {
		t.Fatalf("goroutine profile: %v", err)
	}
	return n
}

// breakdownSteps are the histograms stepBreakdown reads: the queue wait and
// the reconcile (controller-runtime), and keyless's steps within it.
var breakdownSteps = []struct{ name, metric, match string }{
	{"queue wait", "workqueue_queue_duration_seconds", `name="application"`},
	{"reconcile", "controller_runtime_reconcile_time_seconds", `controller="application"`},
	{"ls-remote", "keyless_git_operation_duration_seconds", `op="ls-remote"`},
	{"fetch", "keyless_git_operation_duration_seconds", `op="fetch"`},
	{"render", "keyless_render_duration_seconds", ""},
	{"apply", "keyless_sync_duration_seconds", ""},
}

// copyFile copies src to dst, reporting a failure without failing the run.
func copyFile(t *testing.T, src, dst string) {
	data, err := os.ReadFile(src)
	if err == nil {
		err = os.WriteFile(dst, data, 0o600)
	}
	if err != nil {
		t.Logf("copying %s to %s: %v", src, dst, err)
	}
}

// countApps is how many of the benchmark's apps (not the hooked one) ok
// holds for, with one list of the namespace; -1 when the list fails.
func countApps(ctx context.Context, admin client.Client, ok func(*kv1.Application) bool) int {
	list := &kv1.ApplicationList{}
	if err := admin.List(ctx, list, client.InNamespace(ns)); err != nil {
		return -1
	}
	n := 0
	for i := range list.Items {
		if strings.HasPrefix(list.Items[i].Name, "app-") && ok(&list.Items[i]) {
			n++
		}
	}
	return n
}

// appName is the name of the i-th benchmark Application.
func appName(i int) string { return fmt.Sprintf("app-%04d", i) }

// shardKey is the shard label of the i-th controller ("" for the first,
// which runs without --shard).
func shardKey(i int) string {
	if i == 0 {
		return ""
	}
	return fmt.Sprintf("s%d", i)
}

func orDefault(qps int) string {
	if qps == 0 {
		return "default"
	}
	return strconv.Itoa(qps)
}

// clients are the cluster admin's clientset and controller-runtime client.
func clients(t *testing.T, cfg *rest.Config) (kubernetes.Interface, client.Client) {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = kv1.AddToScheme(scheme)
	admin, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return kubernetes.NewForConfigOrDie(cfg), admin
}

// waitUntil polls cond every 5 ms until it holds or timeout passes.
func waitUntil(timeout time.Duration, cond func() bool) bool {
	return waitEvery(5*time.Millisecond, timeout, cond)
}

// waitEvery polls cond every period until it holds or timeout passes. A
// condition that lists every Application polls once a second: listing 1000 of
// them every 5 ms loaded the API server (and the benchmark process) more
// than the controller under test did.
func waitEvery(period, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(period)
	}
	return false
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}

// install applies the CRD and the namespaced install for ns, and creates floorNS.
func install(t *testing.T, cfg *rest.Config, cs kubernetes.Interface) {
	if err := keylessinstall.Apply(t.Context(), cfg, keylessinstall.Options{Namespaces: []string{ns}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: floorNS}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// controllerKubeconfig writes a kubeconfig with a token of keyless-controller.
func controllerKubeconfig(t *testing.T, cfg *rest.Config, cs kubernetes.Interface, path string) string {
	exp := int64(24 * 3600)
	tok, err := cs.CoreV1().ServiceAccounts("keyless-system").CreateToken(t.Context(), "keyless-controller",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: tok.Status.Token}
	kc.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	kc.CurrentContext = "c"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// cpuSeconds is utime+stime of pid from /proc: its own CPU only.
func cpuSeconds(t *testing.T, pid int) float64 {
	return procCPU(t, pid).own
}

// cpuTimes is a process's CPU in seconds: its own (utime+stime) and that
// of the children it waited for (cutime+cstime). A controller's children
// are its render processes (internal/renderproc), each waited for
// (cmd.Wait) whether it answered, failed or was killed, so children is
// what its renders cost; a render still running when read is not counted
// yet.
type cpuTimes struct {
	own, children float64
}

func (c cpuTimes) withChildren() float64 { return c.own + c.children }

func (c cpuTimes) minus(o cpuTimes) cpuTimes {
	return cpuTimes{own: c.own - o.own, children: c.children - o.children}
}

func (c cpuTimes) plus(o cpuTimes) cpuTimes {
	return cpuTimes{own: c.own + o.own, children: c.children + o.children}
}

// String is "own CPU-s alone, with render children total CPU-s".
func (c cpuTimes) String() string {
	return fmt.Sprintf("%.2f CPU-s alone, %.2f CPU-s with the render children", c.own, c.withChildren())
}

// procCPU reads utime, stime, cutime and cstime of pid from /proc/PID/stat.
func procCPU(t *testing.T, pid int) cpuTimes {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command name (which may hold spaces), from
	// field 3 (state) on: utime, stime, cutime, cstime are fields 14-17.
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	tick := func(i int) float64 {
		v, _ := strconv.ParseFloat(fields[i], 64)
		return v / 100 // USER_HZ
	}
	return cpuTimes{own: tick(11) + tick(12), children: tick(13) + tick(14)}
}

// sampleMemory samples RssAnon and RssFile of pid every 50 ms until the test
// ends; the returned func gives their peaks in KiB. VmHWM alone mixes the
// process's own memory with the pages of its (large, shared) binary.
func sampleMemory(t *testing.T, pid int) func() (anon, file int) {
	var mu sync.Mutex
	var maxAnon, maxFile int
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	go func() {
		for {
			if a, f := statusKiB(pid, "RssAnon:"), statusKiB(pid, "RssFile:"); a > 0 {
				mu.Lock()
				maxAnon, maxFile = max(maxAnon, a), max(maxFile, f)
				mu.Unlock()
			}
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return func() (int, int) {
		mu.Lock()
		defer mu.Unlock()
		return maxAnon, maxFile
	}
}

// statusKiB reads one "Key: N kB" line of /proc/PID/status (0 if absent).
func statusKiB(pid int, key string) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return n
		}
	}
	return 0
}

// peakRSS is VmHWM of pid in KiB.
func peakRSS(t *testing.T, pid int) int {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return n
		}
	}
	return 0
}

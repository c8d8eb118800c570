// Package localcluster runs a real, local Kubernetes control plane — etcd,
// kube-apiserver (RBAC on), kube-controller-manager, kube-scheduler and kwok with
// one fake node — on free loopback ports, for tests, the demo and benchmarks.
package localcluster

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// NodeName is the name of the fake kwok node every local cluster has.
const NodeName = "kwok-node-0"

//go:embed kwokstages/*.yaml
var kwokStages embed.FS

// Options configure Start. The zero value is usable when the binaries are in
// $KUBEBUILDER_ASSETS or ./bin/k8s.
type Options struct {
	// Assets is the folder with the binaries (see RequiredBinaries).
	// Default: $KUBEBUILDER_ASSETS, else ./bin/k8s.
	Assets string
	// StateDir holds certificates, etcd data, kubeconfigs and logs.
	// Default: a new temporary directory (kept after Stop, so logs stay readable).
	StateDir string
	// KubeconfigOut is where the admin kubeconfig is written.
	// Default: <StateDir>/kubeconfig.
	KubeconfigOut string
	// APIServerArgs are extra kube-apiserver flags (e.g.
	// "--authentication-config=/path/authn.yaml"), appended after keyless's own,
	// so they win where a flag is given twice.
	APIServerArgs []string
	// ControllerManagerArgs and SchedulerArgs are extra flags of
	// kube-controller-manager and kube-scheduler (e.g. "--kube-api-qps=200"
	// for a benchmark of 1000 Deployments), appended after keyless's own.
	ControllerManagerArgs, SchedulerArgs []string
	// Progress, when set, receives one line per start-up step.
	Progress io.Writer
	// ReadyTimeout bounds the whole start-up. Default: 2 minutes.
	ReadyTimeout time.Duration
}

// Cluster is a running local control plane.
type Cluster struct {
	// Config is an admin (system:masters) client configuration.
	Config *rest.Config
	// KubeconfigPath is the admin kubeconfig written for Config.
	KubeconfigPath string
	// StateDir holds certificates, etcd data and logs.
	StateDir string
	// LogDir holds one log file per component.
	LogDir string
	// CACertPath is the PEM file of the cluster CA (apiserver serving chain).
	CACertPath string
	// Server is the apiserver URL (https://127.0.0.1:PORT).
	Server string

	mu       sync.Mutex // guards procs and stopped
	procs    []*process
	stopped  bool
	stopOnce sync.Once
}

// Start runs the control plane and returns when the API is ready, the fake node
// is Ready and the controller-manager has created the default ServiceAccount.
// On error everything already started is stopped.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	opts.Assets = ResolveAssets(opts.Assets)
	if err := CheckAssets(opts.Assets); err != nil {
		return nil, err
	}
	if opts.Assets, err = filepath.Abs(opts.Assets); err != nil {
		return nil, fmt.Errorf("resolving assets dir: %w", err)
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, opts.ReadyTimeout)
	defer cancel()

	if opts.StateDir == "" {
		if opts.StateDir, err = os.MkdirTemp("", "keyless-cluster-"); err != nil {
			return nil, fmt.Errorf("creating state dir: %w", err)
		}
	}
	if opts.StateDir, err = filepath.Abs(opts.StateDir); err != nil {
		return nil, fmt.Errorf("resolving state dir: %w", err)
	}
	c := &Cluster{StateDir: opts.StateDir, LogDir: filepath.Join(opts.StateDir, "logs")}
	for _, d := range []string{c.LogDir, filepath.Join(opts.StateDir, "etcd")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("creating %s: %w", d, err)
		}
	}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()

	step := func(format string, a ...any) {
		if opts.Progress != nil {
			_, _ = fmt.Fprintf(opts.Progress, format+"\n", a...)
		}
	}
	began := time.Now()
	step("• generating certificates in %s", opts.StateDir)
	p, err := newPKI(filepath.Join(opts.StateDir, "pki"))
	if err != nil {
		return nil, err
	}
	c.CACertPath = p.CACert

	var etcdURL string
	etcdRetry := func() error {
		// The failed member may have written its (old) peer URL to the data dir.
		if err := os.RemoveAll(filepath.Join(opts.StateDir, "etcd")); err != nil {
			return fmt.Errorf("resetting etcd data: %w", err)
		}
		step("• etcd's port was taken by another process meanwhile: trying other ports")
		return nil
	}
	if err := c.startOnFreePorts(2, etcdRetry, func(ports []int) (*process, error) {
		etcdURL = "http://127.0.0.1:" + strconv.Itoa(ports[0])
		peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
		step("• starting etcd on %s", etcdURL)
		etcd, err := c.start(opts.Assets, "etcd", []string{
			"--data-dir", filepath.Join(opts.StateDir, "etcd"),
			"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
			"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
			"--initial-cluster", "default=" + peerURL,
			"--unsafe-no-fsync", "--log-level", "warn",
		})
		if err != nil {
			return nil, err
		}
		memberDir := filepath.Join(opts.StateDir, "etcd", "member")
		etcd.ready = func(ctx context.Context) error { return httpOK(ctx, http.DefaultClient, etcdURL+"/health") }
		err = waitFor(ctx, etcd, "etcd health", func(ctx context.Context) error {
			if err := etcd.ready(ctx); err != nil {
				return err
			}
			// A healthy answer could come from another etcd that took the
			// port (another cluster starting at the same time): only ours
			// writes our data dir, and it must still be running.
			if _, err := os.Stat(memberDir); err != nil {
				return fmt.Errorf("etcd answers on %s but has not written %s yet", etcdURL, memberDir)
			}
			if etcd.exited() {
				return errors.New("etcd exited")
			}
			return nil
		})
		return etcd, err
	}); err != nil {
		return nil, err
	}

	apiArgs := func(port int) []string {
		return append([]string{
			"--etcd-servers", etcdURL,
			"--secure-port", strconv.Itoa(port),
			"--bind-address", "127.0.0.1",
			"--advertise-address", "127.0.0.1",
			"--endpoint-reconciler-type", "none", // a loopback advertise address is refused by the lease reconciler
			"--cert-dir", filepath.Join(opts.StateDir, "pki"),
			"--tls-cert-file", p.ServingCert, "--tls-private-key-file", p.ServingKey,
			"--client-ca-file", p.CACert,
			"--service-account-key-file", p.SAPub,
			"--service-account-signing-key-file", p.SAKey,
			"--service-account-issuer", "https://kubernetes.default.svc",
			"--authorization-mode", "RBAC",
			"--service-cluster-ip-range", "10.96.0.0/16",
			"--profiling=false",
		}, opts.APIServerArgs...)
	}
	caPEM, err := os.ReadFile(p.CACert)
	if err != nil {
		return nil, fmt.Errorf("reading CA: %w", err)
	}
	certPEM, err := os.ReadFile(p.AdminCert)
	if err != nil {
		return nil, fmt.Errorf("reading admin cert: %w", err)
	}
	keyPEM, err := os.ReadFile(p.AdminKey)
	if err != nil {
		return nil, fmt.Errorf("reading admin key: %w", err)
	}
	apiRetry := func() error {
		step("• kube-apiserver's port was taken by another process meanwhile: trying another port")
		return nil
	}
	if err := c.startOnFreePorts(1, apiRetry, func(ports []int) (*process, error) {
		c.Server = "https://127.0.0.1:" + strconv.Itoa(ports[0])
		step("• starting kube-apiserver on %s", c.Server)
		api, err := c.start(opts.Assets, "kube-apiserver", apiArgs(ports[0]))
		if err != nil {
			return nil, err
		}
		c.Config = &rest.Config{
			Host:            c.Server,
			TLSClientConfig: rest.TLSClientConfig{CAData: caPEM, CertData: certPEM, KeyData: keyPEM},
			QPS:             200,
			Burst:           400,
		}
		httpClient, err := rest.HTTPClientFor(c.Config)
		if err != nil {
			return nil, fmt.Errorf("building admin client: %w", err)
		}
		api.ready = func(ctx context.Context) error { return httpOK(ctx, httpClient, c.Server+"/readyz") }
		err = waitFor(ctx, api, "kube-apiserver /readyz", api.ready)
		return api, err
	}); err != nil {
		return nil, err
	}

	// Each component gets its own identity, so the audit log tells who wrote.
	componentKubeconfig := map[string]string{}
	for name, files := range p.Components {
		certPEM, err := os.ReadFile(files[0])
		if err != nil {
			return nil, err
		}
		keyPEM, err := os.ReadFile(files[1])
		if err != nil {
			return nil, err
		}
		cfg := rest.CopyConfig(c.Config)
		cfg.CertData, cfg.KeyData = certPEM, keyPEM
		path := filepath.Join(opts.StateDir, name+".kubeconfig")
		if err := writeKubeconfig(path, cfg); err != nil {
			return nil, err
		}
		componentKubeconfig[name] = path
	}
	c.KubeconfigPath = opts.KubeconfigOut
	if c.KubeconfigPath == "" {
		c.KubeconfigPath = filepath.Join(opts.StateDir, "kubeconfig")
	}
	if c.KubeconfigPath, err = filepath.Abs(c.KubeconfigPath); err != nil {
		return nil, fmt.Errorf("resolving kubeconfig path: %w", err)
	}
	if err := writeKubeconfig(c.KubeconfigPath, c.Config); err != nil {
		return nil, err
	}

	step("• starting kube-controller-manager, kube-scheduler and kwok")
	if _, err := c.start(opts.Assets, "kube-controller-manager", append([]string{
		"--kubeconfig", componentKubeconfig["kube-controller-manager"],
		"--leader-elect=false",
		"--service-account-private-key-file", p.SAKey,
		"--root-ca-file", p.CACert,
		"--controllers", "*,-nodeipam",
		"--secure-port", "0",
	}, opts.ControllerManagerArgs...)); err != nil {
		return nil, err
	}
	if _, err := c.start(opts.Assets, "kube-scheduler", append([]string{
		"--kubeconfig", componentKubeconfig["kube-scheduler"], "--leader-elect=false", "--secure-port", "0",
	}, opts.SchedulerArgs...)); err != nil {
		return nil, err
	}
	stagesPath, err := writeStages(opts.StateDir)
	if err != nil {
		return nil, err
	}
	if _, err := c.start(opts.Assets, "kwok", []string{
		"--kubeconfig", componentKubeconfig["kwok"],
		"--config", stagesPath,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
		"--cidr=10.128.0.1/16", "--node-ip=10.128.0.1",
		"--node-lease-duration-seconds=40",
		"--server-address=",
	}); err != nil {
		return nil, err
	}

	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return nil, fmt.Errorf("building clientset: %w", err)
	}
	step("• registering fake node %s", NodeName)
	if err := createNode(ctx, cs); err != nil {
		return nil, err
	}
	if err := c.waitAll(ctx, "node Ready and default ServiceAccount", func(ctx context.Context) error {
		return nodeAndSAReady(ctx, cs)
	}); err != nil {
		return nil, err
	}
	step("• control plane ready in %s", time.Since(began).Round(100*time.Millisecond))
	return c, nil
}

// checkTimeout bounds one readiness check of a starting component.
const checkTimeout = 5 * time.Second

// stopGrace is how long a component may take to stop after SIGTERM.
const stopGrace = 10 * time.Second

// Stop ends every process the cluster started (SIGTERM, then SIGKILL after
// 10 s), in reverse start order. It is safe to call more than once. The state
// dir with its logs is kept.
func (c *Cluster) Stop() {
	c.stopOnce.Do(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.stopped = true
		for i := len(c.procs) - 1; i >= 0; i-- {
			c.procs[i].stop(stopGrace)
		}
	})
}

// PIDs returns the process id of every component, by name.
func (c *Cluster) PIDs() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.procs))
	for _, p := range c.procs {
		out[p.name] = p.pid()
	}
	return out
}

// LogPaths returns the log file of every component, sorted.
func (c *Cluster) LogPaths() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, p := range c.procs {
		out = append(out, p.logPath)
	}
	sort.Strings(out)
	return out
}

// Exited returns the names of components that have ended, for health checks.
func (c *Cluster) Exited() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, p := range c.procs {
		if p.exited() {
			out = append(out, p.name)
		}
	}
	return out
}

func (c *Cluster) start(assets, name string, args []string) (*process, error) {
	p, err := startProcess(name, filepath.Join(assets, name), args, c.LogDir)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.procs = append(c.procs, p)
	return p, nil
}

// waitFor polls check until it succeeds, ctx ends, or p exits. Each check
// gets checkTimeout, so a port that accepts and never answers cannot hold
// the wait.
func waitFor(ctx context.Context, p *process, what string, check func(context.Context) error) error {
	var last error
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		if p.exited() {
			return false, p.exitError()
		}
		cctx, cancel := context.WithTimeout(ctx, checkTimeout)
		defer cancel()
		last = check(cctx)
		return last == nil, nil
	})
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("waiting for %s: %w (last error: %w; logs in %s)", what, ctx.Err(), last, filepath.Dir(p.logPath))
	}
	return err
}

// waitAll polls check until it succeeds, ctx ends, or any component exits.
func (c *Cluster) waitAll(ctx context.Context, what string, check func(context.Context) error) error {
	var last error
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		if last = check(ctx); last == nil {
			return true, nil
		}
		for _, p := range c.procs {
			if p.exited() {
				return false, p.exitError()
			}
		}
		return false, nil
	})
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("waiting for %s: %w (last error: %w; logs in %s)", what, ctx.Err(), last, c.LogDir)
	}
	return err
}

func httpOK(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

func writeStages(stateDir string) (string, error) {
	entries, err := kwokStages.ReadDir("kwokstages")
	if err != nil {
		return "", fmt.Errorf("reading embedded kwok stages: %w", err)
	}
	var docs []string
	for _, e := range entries {
		b, err := kwokStages.ReadFile("kwokstages/" + e.Name())
		if err != nil {
			return "", fmt.Errorf("reading embedded kwok stage %s: %w", e.Name(), err)
		}
		docs = append(docs, strings.TrimSpace(string(b)))
	}
	path := filepath.Join(stateDir, "kwok-stages.yaml")
	if err := os.WriteFile(path, []byte(strings.Join(docs, "\n---\n")+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("writing kwok stages: %w", err)
	}
	return path, nil
}

func createNode(ctx context.Context, cs kubernetes.Interface) error {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("64"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("5000"),
		// Real nodes report their disk: pods requesting ephemeral storage
		// (the keyless controller's cache) must be schedulable here too.
		corev1.ResourceEphemeralStorage: resource.MustParse("1Ti"),
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        NodeName,
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
			Labels: map[string]string{
				"type": "kwok", "kubernetes.io/hostname": NodeName, "kubernetes.io/os": "linux",
				"kubernetes.io/arch": "amd64", "kubernetes.io/role": "agent",
			},
		},
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
	}
	// The apiserver may still be bootstrapping its RBAC and priority levels.
	var last error
	if err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, last = cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
		return last == nil || apierrors.IsAlreadyExists(last), nil
	}); err != nil {
		return fmt.Errorf("creating node %s: %w (last error: %w)", NodeName, err, last)
	}
	return nil
}

func nodeAndSAReady(ctx context.Context, cs kubernetes.Interface) error {
	node, err := cs.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	ready := false
	for _, cond := range node.Status.Conditions {
		if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
			ready = true
		}
	}
	if !ready {
		return errors.New("node " + NodeName + " is not Ready yet")
	}
	for _, t := range node.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute {
			return fmt.Errorf("node %s still has taint %s", NodeName, t.Key)
		}
	}
	if _, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{}); err != nil {
		return fmt.Errorf("default ServiceAccount: %w", err)
	}
	return nil
}

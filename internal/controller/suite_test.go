package controller_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/sigstore/sigstore-go/pkg/root"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/celhealth"
	"github.com/keyless-cd/keyless/internal/controller"
	"github.com/keyless-cd/keyless/internal/gitserver"
	"github.com/keyless-cd/keyless/internal/install"
	"github.com/keyless-cd/keyless/internal/ledgersink"
	"github.com/keyless-cd/keyless/internal/localcluster"
	"github.com/keyless-cd/keyless/internal/localcluster/clustertest"
	"github.com/keyless-cd/keyless/internal/oidc"
	"github.com/keyless-cd/keyless/internal/renderproc"
)

const (
	appNS       = "myapp"
	controlNS   = "keyless-system"
	gitToken    = "glpat-controller-test"
	hookSecret  = "a-webhook-secret-of-some-length"
	repoName    = "myorg/myapp"
	controllerU = "system:serviceaccount:keyless-system:keyless-controller"
	deployerU   = "system:serviceaccount:myapp:keyless-deployer"
)

// env is a real cluster with keyless's CRD and namespaced install, a Git
// server, and a controller running in-process as its own ServiceAccount.
type env struct {
	t       *testing.T
	cluster *clustertest.Cluster
	admin   client.Client
	cs      kubernetes.Interface
	git     *gitserver.Server
	ctrlCfg *rest.Config
	hookURL string
	audit   *syncBuffer
	// cacheDir is the running controller's Git cache.
	cacheDir string
	// namespaces are the managed namespaces: appNS and the extra tenants.
	namespaces []string
	// render bounds the controller's renders (zero: the defaults).
	render renderproc.Options
	// hookTimeout is the controller's --hook-timeout (zero: the default);
	// syncTimeout its --sync-timeout, concurrency its --concurrency.
	hookTimeout, syncTimeout time.Duration
	concurrency              int
	// metricsAddr is the controller's --metrics-bind-address ("": off).
	metricsAddr string
	// pprofAddr is the controller's --pprof-bind-address ("": off).
	pprofAddr string
	// logs, when set, receives the controller's log (JSON, every level).
	logs *syncBuffer
	// gitTimeout is the controller's --git-timeout (zero: the default).
	gitTimeout time.Duration
	// leaderElect runs the controller with --leader-elect (Lease in controlNS).
	leaderElect bool
	// shardNamespaces is the (unsharded) controller's --shard-namespaces.
	shardNamespaces controller.ShardNamespaces
	// healthExprs are the controller's --health-check-exprs entries.
	healthExprs []celhealth.Expressions
	// ledgerFile and ledgerKey are the controller's --ledger-file and key.
	ledgerFile string
	ledgerKey  ed25519.PrivateKey
	// ledgerSink is the controller's --ledger-sink (nil: none).
	ledgerSink *ledgersink.Options
	// trustPolicy and trustedRoot are --trust-policy and --trusted-root.
	trustPolicy *oidc.FederationPolicy
	trustedRoot *root.TrustedRoot

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) records(t *testing.T) []controller.AuditRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return auditLines(t, s.b.String(), false)
}

// auditLines parses the audit lines in text; with mixed, other lines (a
// process's log) are skipped, else every line must be one.
func auditLines(t *testing.T, text string, mixed bool) []controller.AuditRecord {
	t.Helper()
	var out []controller.AuditRecord
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		if line == "" || (mixed && !strings.Contains(line, `"audit":`)) {
			continue
		}
		var r controller.AuditRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("audit line is not JSON: %q: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		dir = filepath.Dir(dir)
	}
}

// newEnv starts the environment with appNS, plus extra tenant namespaces
// installed the same way.
func newEnv(t *testing.T, extra ...string) *env {
	t.Helper()
	ctx := t.Context()
	c, err := clustertest.StartAudited(t.TempDir(), localcluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = kv1.AddToScheme(scheme)
	_ = apiextensionsv1.AddToScheme(scheme)
	admin, err := client.New(c.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, cluster: c, admin: admin, cs: kubernetes.NewForConfigOrDie(c.Config), audit: &syncBuffer{},
		namespaces: append([]string{appNS}, extra...)}

	// The cluster admin's part: CRD, namespaces, the namespaced install.
	if err := install.Apply(ctx, c.Config, install.Options{ControllerNamespace: controlNS, Namespaces: e.namespaces}); err != nil {
		t.Fatal(err)
	}

	// The controller's own identity: a short-lived token for its ServiceAccount.
	tok, err := e.cs.CoreV1().ServiceAccounts(controlNS).CreateToken(ctx, "keyless-controller", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.ctrlCfg = &rest.Config{Host: c.Config.Host, BearerToken: tok.Status.Token, TLSClientConfig: rest.TLSClientConfig{CAData: c.Config.CAData}, QPS: 100, Burst: 200}

	e.git, err = gitserver.Start(gitserver.Options{Root: t.TempDir(), Token: gitToken})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.git.Stop)
	if err := e.git.CreateRepo(ctx, repoName, "main"); err != nil {
		t.Fatal(err)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "myapp-git", Namespace: appNS, Labels: map[string]string{kv1.CredentialLabel: kv1.CredentialGit}, Annotations: map[string]string{kv1.GitHostAnnotation: "127.0.0.1"}}, StringData: map[string]string{"username": "ci", "password": gitToken}}
	if err := admin.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	return e
}

// startController runs the controller as its ServiceAccount until stopController.
func (e *env) startController(defaultInterval time.Duration) {
	e.t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	e.hookURL = "http://" + l.Addr().String()
	e.cacheDir = e.t.TempDir()
	ctx, cancel := context.WithCancel(e.t.Context())
	ready := make(chan struct{})
	done := make(chan error, 1)
	metricsAddr := e.metricsAddr
	if metricsAddr == "" {
		metricsAddr = "0"
	}
	logger := testLogger()
	if e.logs != nil {
		logger = logr.FromSlogHandler(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.Level(-10)}))
	}
	go func() {
		done <- controller.Run(ctx, e.ctrlCfg, controller.Options{
			Namespaces: e.namespaces, MetricsBindAddress: metricsAddr, HealthProbeBindAddress: "0", PprofBindAddress: e.pprofAddr, Render: e.render,
			DefaultInterval: defaultInterval, WebhookListener: l, WebhookSecret: []byte(hookSecret),
			CacheDir: e.cacheDir, CacheGCInterval: 2 * time.Second, CapabilitiesTTL: time.Second, AllowInsecureHTTP: true, AuditOut: e.audit, Logger: logger, Ready: ready,
			HookTimeout: e.hookTimeout, SyncTimeout: e.syncTimeout, Concurrency: e.concurrency, GitTimeout: e.gitTimeout, LeaderElect: e.leaderElect, LeaderElectionNamespace: controlNS, ControllerNamespace: controlNS, ShardNamespaces: e.shardNamespaces, HealthCheckExprs: e.healthExprs, LedgerFile: e.ledgerFile, LedgerKey: e.ledgerKey, LedgerSink: e.ledgerSink,
			TrustPolicy: e.trustPolicy, TrustedRoot: e.trustedRoot,
		})
	}()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		e.t.Fatalf("controller exited: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		e.t.Fatal("controller did not start")
	}
	e.mu.Lock()
	e.cancel, e.done = cancel, done
	e.mu.Unlock()
	e.t.Cleanup(e.stopController)
}

func (e *env) stopController() {
	e.mu.Lock()
	cancel, done := e.cancel, e.done
	e.cancel = nil
	e.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			e.t.Errorf("controller stopped with an error: %v", err)
		}
	case <-time.After(20 * time.Second):
		e.t.Error("controller did not stop")
	}
}

func (e *env) app(name string) *kv1.Application {
	e.t.Helper()
	app := &kv1.Application{}
	if err := e.admin.Get(e.t.Context(), client.ObjectKey{Namespace: appNS, Name: name}, app); err != nil {
		e.t.Fatal(err)
	}
	return app
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last state: %s", timeout, what, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// testLogger logs to stderr when KEYLESS_TEST_LOG is set.
func testLogger() logr.Logger {
	if os.Getenv("KEYLESS_TEST_LOG") == "" {
		return logr.Discard()
	}
	return logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, nil))
}

// createApp creates an automated (prune, selfHeal) Application name of the
// test repository's path, reading it with the myapp-git credential.
func (e *env) createApp(name, path string, interval time.Duration) {
	e.t.Helper()
	app := &kv1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: appNS},
		Spec: kv1.ApplicationSpec{
			Source: kv1.ApplicationSource{RepoURL: e.git.RepoURL(repoName), TargetRevision: "main", Path: path,
				SecretRef: &kv1.LocalObjectReference{Name: "myapp-git"}},
			SyncPolicy: &kv1.SyncPolicy{Automated: &kv1.AutomatedSyncPolicy{Prune: true, SelfHeal: true}},
			Interval:   &metav1.Duration{Duration: interval},
		},
	}
	if err := e.admin.Create(e.t.Context(), app); err != nil {
		e.t.Fatal(err)
	}
}

// waitForOr is waitFor whose failure also says what explain returns (the
// Application's conditions and Events, say).
func waitForOr(t *testing.T, timeout time.Duration, what string, cond func() (bool, string), explain func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last state: %s; %s", timeout, what, state, explain())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// String is everything written so far.
func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

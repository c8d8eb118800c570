package ui_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/controller"
	"github.com/keyless-cd/keyless/internal/gitserver"
	"github.com/keyless-cd/keyless/internal/install"
	"github.com/keyless-cd/keyless/internal/localcluster"
	"github.com/keyless-cd/keyless/internal/localcluster/clustertest"
	"github.com/keyless-cd/keyless/internal/renderproc"
	"github.com/keyless-cd/keyless/internal/ui"
)

// TestMain lets this test binary serve as the controller's render process.
func TestMain(m *testing.M) {
	renderproc.ServeIfWorker()
	os.Exit(m.Run())
}

// screenshotsEnv names the folder the browser test writes its screenshots
// to (`make ui-screenshots` sets it to docs/images); default a temp folder.
const screenshotsEnv = "KEYLESS_UI_SCREENSHOTS"

const (
	teamA     = "team-a"
	teamB     = "team-b"
	controlNS = "keyless-system"
	gitToken  = "glpat-ui-browser-test"
	repo      = "platform/deploy"
)

// xss are the payloads a commit message and an annotation carry.
var xss = []string{`<script>alert(1)</script>`, `"><img src=x onerror=alert(2)>`}

// manifests is one team's ConfigMap, Deployment and Service.
func manifests(name string, replicas int, annotations string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata:
  name: %[1]s-config
  annotations:
%[3]s
data:
  greeting: hello
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
spec:
  replicas: %[2]d
  selector:
    matchLabels: {app: %[1]s}
  template:
    metadata:
      labels: {app: %[1]s}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
      containers:
      - name: app
        securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
        image: registry.example.com/%[1]s:1.4.2
---
apiVersion: v1
kind: Service
metadata:
  name: %[1]s
spec:
  selector: {app: %[1]s}
  ports:
  - port: 80
`, name, replicas, annotations)
}

// browserEnv is a real cluster with two tenants, a Git server, the
// controller in-process as its ServiceAccount, and a kubeconfig-less
// identity per viewer.
type browserEnv struct {
	t       *testing.T
	cluster *localcluster.Cluster
	admin   client.Client
	cs      kubernetes.Interface
	git     *gitserver.Server
}

func newBrowserEnv(t *testing.T) *browserEnv {
	t.Helper()
	ctx := t.Context()
	c := clustertest.Start(t, localcluster.Options{})
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = kv1.AddToScheme(scheme)
	admin, err := client.New(c.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	e := &browserEnv{t: t, cluster: c, admin: admin, cs: kubernetes.NewForConfigOrDie(c.Config)}
	if err := install.Apply(ctx, c.Config, install.Options{ControllerNamespace: controlNS, Namespaces: []string{teamA, teamB}}); err != nil {
		t.Fatal(err)
	}
	e.git, err = gitserver.Start(gitserver.Options{Root: t.TempDir(), Token: gitToken})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.git.Stop)
	if err := e.git.CreateRepo(ctx, repo, "main"); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{teamA, teamB} {
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "git", Namespace: ns, Labels: map[string]string{kv1.CredentialLabel: kv1.CredentialGit},
			Annotations: map[string]string{kv1.GitHostAnnotation: "127.0.0.1"}}, StringData: map[string]string{"username": "ci", "password": gitToken}}
		if err := admin.Create(ctx, secret); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// identity returns a config acting as a new ServiceAccount ns/name.
func (e *browserEnv) identity(ns, name string) *rest.Config {
	e.t.Helper()
	ctx := e.t.Context()
	if _, err := e.cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	tok, err := e.cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return &rest.Config{Host: e.cluster.Config.Host, BearerToken: tok.Status.Token, TLSClientConfig: rest.TLSClientConfig{CAData: e.cluster.Config.CAData}}
}

// grant binds ns/sa to a Role in ns that reads Applications, their
// objects and Events, and patches Applications when patch is set.
func (e *browserEnv) grant(ns, sa string, patch bool) {
	e.t.Helper()
	read := []string{"get", "list", "watch"}
	appVerbs := read
	if patch {
		appVerbs = append(appVerbs, "patch")
	}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: ns}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{kv1.GroupVersion.Group}, Resources: []string{"applications"}, Verbs: appVerbs},
		{APIGroups: []string{""}, Resources: []string{"configmaps", "services", "pods", "events"}, Verbs: read},
		{APIGroups: []string{"apps"}, Resources: []string{"deployments", "replicasets"}, Verbs: read},
		{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: read},
	}}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: ns},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: sa},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: ns}}}
	for _, o := range []client.Object{role, binding} {
		if err := e.admin.Create(e.t.Context(), o); err != nil {
			e.t.Fatal(err)
		}
	}
}

// startController runs the controller as its ServiceAccount for the test.
func (e *browserEnv) startController() {
	e.t.Helper()
	ctx, cancel := context.WithCancel(e.t.Context())
	// The install's own ServiceAccount holds the controller's Roles.
	tok, err := e.cs.CoreV1().ServiceAccounts(controlNS).CreateToken(ctx, "keyless-controller", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	cfg := &rest.Config{Host: e.cluster.Config.Host, BearerToken: tok.Status.Token, TLSClientConfig: rest.TLSClientConfig{CAData: e.cluster.Config.CAData}, QPS: 100, Burst: 200}
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() {
		done <- controller.Run(ctx, cfg, controller.Options{
			Namespaces: []string{teamA, teamB}, MetricsBindAddress: "0", HealthProbeBindAddress: "0",
			DefaultInterval: time.Hour, CacheDir: e.t.TempDir(), AllowInsecureHTTP: true, AuditOut: io.Discard, Ready: ready,
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
	e.t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				e.t.Errorf("controller: %v", err)
			}
		case <-time.After(20 * time.Second):
			e.t.Error("controller did not stop")
		}
	})
}

// serveUI runs `keyless ui` for cfg on a loopback port until the test ends
// or stop is called, and returns its URL.
func serveUI(t *testing.T, cfg *rest.Config, opts ui.Options) (url string, stop func()) {
	t.Helper()
	opts.Config = cfg
	srv, err := ui.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("ui: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return "http://" + l.Addr().String(), stop
}

// testBrowser is headless Chromium, started for one test.
type testBrowser struct {
	ctx context.Context
}

// browserTab is one tab of the test's browser; its helpers fail the test.
type browserTab struct {
	t   *testing.T
	ctx context.Context
}

// browser starts headless Chromium for the test.
func browser(t *testing.T) *testBrowser {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("the browser tests need Debian's chromium package (apt-get install chromium; .ci/run installs it): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.WindowSize(1280, 800))
	alloc, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	return &testBrowser{ctx: ctx}
}

// tab opens a new tab for t (a subtest), closed when t ends; a script that
// opens a dialog there (the payloads' alert) fails t.
func (b *testBrowser) tab(t *testing.T) *browserTab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	t.Cleanup(cancel)
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return // the tab closed with t
			}
			t.Errorf("a script ran in the page: dialog %q", ev.Message)
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	return &browserTab{t: t, ctx: ctx}
}

// do runs the steps in the tab within a minute; on failure it says what
// the page showed instead.
func (tb *browserTab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	t := tb.t
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		peek, cancelPeek := context.WithTimeout(tb.ctx, 5*time.Second)
		defer cancelPeek()
		loc, _ := chromedp.Run(peek, chromedp.Location())
		shown, _ := chromedp.Run(peek, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
		t.Fatalf("%s: %v\npage %s shows:\n%s", what, err, loc, shown)
	}
}

// eval returns the value of a JavaScript expression in the tab.
func eval[T any](tb *browserTab, expr string) T {
	tb.t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		tb.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// waitJS waits until the JavaScript expression is true in the page.
func waitJS(expr string, timeout time.Duration) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(25*time.Millisecond))
}

// text is the visible text of the first element sel selects.
func (tb *browserTab) text(sel string) string {
	tb.t.Helper()
	s, err := chromedp.Run(tb.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		tb.t.Fatalf("reading %s: %v", sel, err)
	}
	return s
}

// screenshot writes the whole page as a PNG named name.
func (tb *browserTab) screenshot(name string) {
	t := tb.t
	t.Helper()
	dir := os.Getenv(screenshotsEnv)
	if dir == "" {
		dir = t.TempDir()
	}
	png, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil { //nolint:gosec // a picture for the docs
		t.Fatal(err)
	}
	t.Logf("screenshot %s", filepath.Join(dir, name))
}

package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/ciissuer"
	"github.com/keyless-cd/keyless/internal/controller"
	"github.com/keyless-cd/keyless/internal/gitserver"
	"github.com/keyless-cd/keyless/internal/install"
	"github.com/keyless-cd/keyless/internal/localcluster"
)

// env is everything the demo runs, all on loopback.
type env struct {
	opts Options
	dir  string

	issuer  *ciissuer.Issuer
	caFile  string // the issuer's CA
	policy  string // the FederationPolicy file
	authn   string // the AuthenticationConfiguration file the apiserver was started with
	cluster *localcluster.Cluster
	admin   client.Client
	cs      kubernetes.Interface
	git     *gitserver.Server
	gitTok  string
	repoURL string

	hookURL    string
	hookSecret string
	auditPath  string
	ctrlCancel context.CancelFunc
	ctrlDone   chan error
	ctrlConfig string // the controller's kubeconfig (its ServiceAccount token)

	firstCommit string
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// setup starts the CI issuer, the control plane (trusting the issuer through
// the AuthenticationConfiguration `keyless oidc config` generates), the Git
// server with the application repository, keyless's namespaced install and
// the controller, running as its ServiceAccount. It returns evidence lines.
func (e *env) setup(ctx context.Context) ([]string, error) {
	var ev []string
	var err error
	if e.issuer, err = ciissuer.StartOn("127.0.0.1:0", true); err != nil {
		return nil, fmt.Errorf("starting the CI issuer: %w", err)
	}
	e.caFile = filepath.Join(e.dir, "issuer-ca.pem")
	e.policy = filepath.Join(e.dir, "keyless-oidc.yaml")
	e.authn = filepath.Join(e.dir, "authentication-config.yaml")
	if err := os.WriteFile(e.caFile, e.issuer.CAPEM(), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(e.policy, []byte(policyYAML(e.issuer.URL(), e.caFile)), 0o600); err != nil {
		return nil, err
	}
	out, err := e.keyless(ctx, nil, "oidc", "config", "--policy", e.policy)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(e.authn, []byte(out), 0o600); err != nil {
		return nil, err
	}
	ev = append(ev, "CI issuer (GitLab-shaped id_tokens) at "+e.issuer.URL())

	e.cluster, err = localcluster.Start(ctx, localcluster.Options{
		Assets: e.opts.Assets, StateDir: filepath.Join(e.dir, "cluster"),
		APIServerArgs: []string{"--authentication-config=" + e.authn},
	})
	if err != nil {
		return nil, fmt.Errorf("starting the control plane: %w", err)
	}
	ev = append(ev, "control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok) at "+e.cluster.Config.Host+
		", apiserver started with --authentication-config from `keyless oidc config`")
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = kv1.AddToScheme(scheme)
	if e.admin, err = client.New(e.cluster.Config, client.Options{Scheme: scheme}); err != nil {
		return nil, err
	}
	if e.cs, err = kubernetes.NewForConfig(e.cluster.Config); err != nil {
		return nil, err
	}

	e.gitTok = randomHex(16)
	if e.git, err = gitserver.Start(gitserver.Options{Root: filepath.Join(e.dir, "git"), Token: e.gitTok}); err != nil {
		return nil, fmt.Errorf("starting the Git server: %w", err)
	}
	if err := e.git.CreateRepo(ctx, repoName, "main"); err != nil {
		return nil, err
	}
	e.repoURL = e.git.RepoURL(repoName)
	if e.firstCommit, err = e.commit(ctx, chartFiles("1.0.0", true), nil, "myapp 1.0.0: Helm chart and migration"); err != nil {
		return nil, err
	}
	ev = append(ev, fmt.Sprintf("Git server (smart HTTP, token auth) with %s: a Helm chart + values, commit %s", e.repoURL, kv1.ShortSHA(e.firstCommit)))

	if err := install.Apply(ctx, e.cluster.Config, install.Options{Namespaces: []string{appNS}}); err != nil {
		return nil, err
	}
	gitSecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "myapp-git", Namespace: appNS, Labels: map[string]string{kv1.CredentialLabel: kv1.CredentialGit}, Annotations: map[string]string{kv1.GitHostAnnotation: "127.0.0.1"}}, StringData: map[string]string{"username": "keyless", "password": e.gitTok}}
	if err := e.admin.Create(ctx, gitSecret); err != nil {
		return nil, err
	}
	ev = append(ev, "keyless CRD + namespaced install (no ClusterRole): controller in keyless-system, Roles and keyless-deployer in myapp")

	if err := e.startController(ctx); err != nil {
		return nil, err
	}
	ev = append(ev, "controller running as system:serviceaccount:keyless-system:keyless-controller (namespaced Roles only), webhooks at "+e.hookURL)
	return ev, nil
}

// startController runs the controller with a short-lived token of its
// ServiceAccount: it holds exactly the install's namespaced Roles.
func (e *env) startController(ctx context.Context) error {
	expiry := int64(12 * 3600)
	tok, err := e.cs.CoreV1().ServiceAccounts(install.DefaultControllerNamespace).CreateToken(ctx, "keyless-controller",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("requesting the controller's token: %w", err)
	}
	cfg := &rest.Config{Host: e.cluster.Config.Host, BearerToken: tok.Status.Token, TLSClientConfig: rest.TLSClientConfig{CAData: e.cluster.Config.CAData}}
	e.ctrlConfig = filepath.Join(e.dir, "controller.kubeconfig")
	kc := clientcmdapi.NewConfig()
	kc.Clusters["demo"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["keyless-controller"] = &clientcmdapi.AuthInfo{Token: tok.Status.Token}
	kc.Contexts["keyless-controller"] = &clientcmdapi.Context{Cluster: "demo", AuthInfo: "keyless-controller", Namespace: appNS}
	kc.CurrentContext = "keyless-controller"
	if err := clientcmd.WriteToFile(*kc, e.ctrlConfig); err != nil {
		return err
	}

	hookListener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	e.hookURL = "http://" + hookListener.Addr().String()
	e.hookSecret = randomHex(16)
	e.auditPath = filepath.Join(e.dir, "audit.jsonl")
	auditFile, err := os.Create(e.auditPath)
	if err != nil {
		return err
	}
	logFile, err := os.Create(filepath.Join(e.dir, "controller.log"))
	if err != nil {
		return err
	}
	ctrlCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	ready := make(chan struct{})
	e.ctrlDone = make(chan error, 1)
	e.ctrlCancel = cancel
	go func() {
		err := controller.Run(ctrlCtx, cfg, controller.Options{
			Namespaces: []string{appNS}, MetricsBindAddress: "0", HealthProbeBindAddress: "0",
			DefaultInterval: 3 * time.Minute, WebhookListener: hookListener, WebhookSecret: []byte(e.hookSecret),
			CacheDir: filepath.Join(e.dir, "git-cache"), AuditOut: auditFile,
			AllowInsecureHTTP: true, // the demo's Git server is plain HTTP on loopback
			Logger:            logr.FromSlogHandler(slog.NewTextHandler(logFile, nil)), Ready: ready,
		})
		_ = auditFile.Close()
		_ = logFile.Close()
		e.ctrlDone <- err
	}()
	select {
	case <-ready:
		return nil
	case err := <-e.ctrlDone:
		e.ctrlCancel = nil
		return fmt.Errorf("the controller exited: %w", err)
	case <-time.After(e.opts.StepTimeout):
		return errors.New("the controller did not start in time")
	}
}

// teardown stops every process and server the demo started, then removes its
// folder unless keepFiles (or the folder was given with Options.Dir).
func (e *env) teardown(keepFiles bool) {
	if e.ctrlCancel != nil {
		e.ctrlCancel()
		select {
		case err := <-e.ctrlDone:
			if err != nil {
				_, _ = fmt.Fprintf(e.opts.Out, "the controller stopped with an error: %v\n", err)
			}
		case <-time.After(20 * time.Second):
			_, _ = fmt.Fprintln(e.opts.Out, "the controller did not stop within 20s")
		}
	}
	if e.git != nil {
		e.git.Stop()
	}
	if e.cluster != nil {
		e.cluster.Stop()
	}
	if e.issuer != nil {
		e.issuer.Stop()
	}
	if !keepFiles && e.opts.Dir == "" {
		_ = os.RemoveAll(e.dir)
	}
}

// keyless runs a keyless command line through Options.Keyless and returns
// its standard output; a non-zero exit is an error carrying stderr.
func (e *env) keyless(ctx context.Context, vars map[string]string, args ...string) (string, error) {
	out, errOut, code := e.opts.Keyless(ctx, vars, args...)
	if code != 0 {
		return out, &commandError{args: args, code: code, stderr: errOut, stdout: out}
	}
	return out, nil
}

// commandError is a keyless command that exited non-zero.
type commandError struct {
	args           []string
	code           int
	stderr, stdout string
}

func (c *commandError) Error() string {
	msg := c.stderr
	if msg == "" {
		msg = c.stdout
	}
	return fmt.Sprintf("keyless %s: exit %d: %s", c.args[0], c.code, firstLine(msg))
}

// Package ui is keyless's read-only dashboard: the Applications a viewer
// may list, one Application's conditions, objects, diff, history, audit
// records and Events, updated live, and two writes (Sync now, and Approve
// for an Application awaiting the approval of its out-of-namespace
// objects). Every request to the cluster is made with the viewer's own
// credential (their kubeconfig), so Kubernetes RBAC decides what they see
// and may do; nothing is cached to disk and no credential reaches the
// browser.
package ui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/approver"
	"github.com/keyless-cd/keyless/internal/celhealth"
	"github.com/keyless-cd/keyless/internal/engine"
)

// DefaultAddr is where `keyless ui` listens: loopback only.
const DefaultAddr = "127.0.0.1:8390"

// Options configure a Server. Config is required.
type Options struct {
	// Config is the viewer's client configuration (their kubeconfig).
	Config *rest.Config
	// Namespaces are the namespaces whose Applications are shown.
	// Ignored with AllNamespaces.
	Namespaces []string
	// AllNamespaces lists Applications in every namespace (a cluster-wide
	// list the viewer must be allowed).
	AllNamespaces bool
	// Logger receives one line per failed request. Default: discard.
	Logger *slog.Logger
	// RequestTimeout bounds each page's reads from the cluster. Default 10s.
	RequestTimeout time.Duration
	// Now is the clock (ages on the pages). Default time.Now.
	Now func() time.Time
	// AllowedHosts are further Host headers the dashboard answers to, each
	// NAME[:PORT] or IP[:PORT] (IPv6 in brackets; without a port, the port
	// listened on). Default none: only the address listened on — with
	// localhost on loopback, and every IP address of this machine when
	// listening on all of them (0.0.0.0, ::). Any other name is refused with
	// 421: a web page could rebind it to this machine (DNS rebinding).
	AllowedHosts []string
	// ControllerNamespace is the controller's namespace, which holds the
	// pending out-of-namespace objects and the approval records. Default
	// approver.DefaultControllerNamespace (keyless-system).
	ControllerNamespace string
	// Health judges the objects of the tree before kstatus, as the
	// controller does (an Application's spec.healthCheckExprs over it).
	// Default: keyless's built-in library (celhealth.DefaultChecker); keyless
	// ui --health-check-exprs sets the controller's file over it
	// (controller.DefaultHealth).
	Health *celhealth.Checker
	// ApproveTimeout bounds the wait for new CRDs to be Established when
	// the viewer approves (as keyless approve --timeout). Default 2m.
	ApproveTimeout time.Duration
}

func (o Options) withDefaults() (Options, error) {
	if o.Config == nil {
		return o, errors.New("ui: no client configuration")
	}
	if !o.AllNamespaces && len(o.Namespaces) == 0 {
		return o, errors.New("ui: no namespace: pass -n NAMESPACE (or -A)")
	}
	for _, h := range o.AllowedHosts {
		if _, _, err := parseAllowedHost(h); err != nil {
			return o, err
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ControllerNamespace == "" {
		o.ControllerNamespace = approver.DefaultControllerNamespace
	}
	if o.ApproveTimeout <= 0 {
		o.ApproveTimeout = 2 * time.Minute
	}
	if o.Health == nil {
		lib, err := celhealth.DefaultChecker()
		if err != nil {
			return o, fmt.Errorf("ui: the built-in health library: %w", err)
		}
		o.Health = lib
	}
	return o, nil
}

// Server serves the dashboard. Create it with New.
type Server struct {
	opts Options
	// cfg is the viewer's configuration as every client here uses it
	// (user agent, rate limit): an approval is made with it.
	cfg     *rest.Config
	apps    client.WithWatch
	kube    kubernetes.Interface
	dynamic dynamic.Interface
	mapper  *restmapper.DeferredDiscoveryRESTMapper
	csrf    csrfToken
	live    *hub

	viewerMu   sync.Mutex
	viewerName string

	// health is each Application's compiled CEL health (healthOf).
	healthMu sync.Mutex
	health   map[types.NamespacedName]appHealth
}

// New builds a Server from the viewer's configuration. It makes no request.
func New(opts Options) (*Server, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	cfg := rest.CopyConfig(opts.Config)
	cfg.UserAgent = "keyless-ui"
	// One page is about ten reads: client-go's default of 5/s held a
	// live update back by two seconds (the browser test found it).
	cfg = engine.WithRateLimit(cfg)
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := kv1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	apps, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("ui: Application client: %w", err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	tok, err := newCSRFToken()
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, cfg: cfg, apps: apps, kube: kube, dynamic: dyn,
		mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc)), csrf: tok, health: map[types.NamespacedName]appHealth{}}
	s.live = newHub(s.watchApplications, opts.Logger)
	return s, nil
}

// Serve answers on l until ctx ends, then shuts down within 5 seconds.
// The live-update watch runs while Serve does.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(l.Addr().String()),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	go s.live.run(ctx, s.watchedNamespaces())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		_ = srv.Close()
	}
	return nil
}

// IsLoopback reports whether addr (host:port) binds loopback only.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Package engine converges one namespace to a set of rendered objects: guards
// (namespace confinement), server-side apply through fluxcd/pkg/ssa (whole set
// validated by a dry-run before any write), inventory and prune, diff, and a
// kstatus wait. It is shared by `keyless apply`, `keyless deploy` and the
// controller.
package engine

import (
	"fmt"
	"net/http"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/cli-utils/pkg/kstatus/polling/clusterreader"
	"github.com/fluxcd/cli-utils/pkg/kstatus/polling/engine"
	"github.com/fluxcd/cli-utils/pkg/kstatus/polling/statusreaders"
	"github.com/fluxcd/pkg/ssa"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// Labels and annotations keyless puts on, or reads from, the objects it manages.
const (
	// FieldManager is the server-side apply field manager of the
	// controller's writes: the only writer whose edits are not drift.
	FieldManager = "keyless"
	// CLIFieldManager is the field manager of keyless apply, keyless deploy
	// and keyless install: a person's writes, so the controller's self-heal
	// sees them as drift like any other hand edit.
	CLIFieldManager = "keyless-cli"
	// ManagedByLabel marks objects applied by keyless.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of ManagedByLabel.
	ManagedByValue = "keyless"
	// InventoryLabel names the inventory (Application or --name) an object belongs to.
	InventoryLabel = "keyless.dev/inventory"
	// PruneAnnotation set to PruneDisabled keeps an object when it leaves the render.
	PruneAnnotation = "keyless.dev/prune"
	// PruneDisabled is the value of PruneAnnotation that disables pruning.
	PruneDisabled = "disabled"
)

// Engine applies, diffs, prunes and waits for objects in one cluster, with the
// identity of its rest.Config (the controller impersonates a ServiceAccount).
type Engine struct {
	client  client.Client
	mapper  meta.RESTMapper
	manager *ssa.ResourceManager
	poller  *polling.StatusPoller
	// protected are the ServiceAccounts ("ns/name") this engine writes as.
	protected map[string]bool
	// fieldManager is FieldManager (controller) or CLIFieldManager.
	fieldManager string
	// written are the UIDs and resourceVersions the manager's applies got.
	written *written
}

// New builds an Engine for cfg. A config without a rate limit (QPS 0, as
// kubeconfigs load) gets 50 QPS, burst 100, instead of client-go's 5/10.
func New(cfg *rest.Config) (*Engine, error) {
	cfg = WithRateLimit(cfg)
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("building HTTP client: %w", err)
	}
	return NewWithHTTPClient(cfg, httpClient)
}

// NewWithHTTPClient builds an Engine for cfg using httpClient; it writes
// as CLIFieldManager (a person's tool).
func NewWithHTTPClient(cfg *rest.Config, httpClient *http.Client) (*Engine, error) {
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("building REST mapper: %w", err)
	}
	return NewWithMapper(cfg, httpClient, mapper, CLIFieldManager)
}

// Client rate limit of a kubeconfig that sets none: client-go's default
// of 5 requests/s throttles an apply of a few dozen objects (and a
// dashboard page of about ten reads) by seconds. The API server's priority
// and fairness still bounds each client.
const (
	DefaultQPS   = 50
	DefaultBurst = 100
)

// WithRateLimit returns cfg, or a copy with DefaultQPS and DefaultBurst
// when cfg sets no rate limit of its own.
func WithRateLimit(cfg *rest.Config) *rest.Config {
	if cfg.QPS != 0 || cfg.RateLimiter != nil {
		return cfg
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = DefaultQPS, DefaultBurst
	return cfg
}

// NewWithMapper builds an Engine that shares mapper (discovery) with others
// and writes as fieldManager (FieldManager for the controller, which keeps
// one engine per impersonated ServiceAccount; CLIFieldManager otherwise).
func NewWithMapper(cfg *rest.Config, httpClient *http.Client, mapper meta.RESTMapper, fieldManager string) (*Engine, error) {
	cfg = WithRateLimit(cfg)
	c, err := client.New(cfg, client.Options{HTTPClient: httpClient, Mapper: mapper})
	if err != nil {
		return nil, fmt.Errorf("building client: %w", err)
	}
	// Status is computed from each object alone (kstatus) and read with plain
	// GETs, so a deployer whose Role lists only its own kinds can still wait.
	poller := polling.NewStatusPoller(c, mapper, polling.Options{
		CustomStatusReaders:  []engine.StatusReader{statusreaders.NewGenericStatusReader(mapper, computeStatus)},
		ClusterReaderFactory: engine.ClusterReaderFactoryFunc(clusterreader.NewDirectClusterReader),
	})
	w := &written{byID: map[string]writtenObject{}}
	m := ssa.NewResourceManager(recordingClient{Client: c, written: w}, poller, ssa.Owner{Field: fieldManager, Group: "keyless.dev"})
	m.SetConcurrency(8)
	return &Engine{client: c, mapper: mapper, manager: m, poller: poller, protected: protectedAccounts(cfg), fieldManager: fieldManager, written: w}, nil
}

// Client returns the engine's controller-runtime client.
func (e *Engine) Client() client.Client { return e.client }

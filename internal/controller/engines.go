package controller

import (
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	"github.com/keyless-cd/keyless/internal/engine"
)

// enginePool holds one engine per deployer identity, each impersonating it.
// Applications sharing a deployer share its engine (and its HTTP
// connections); an engine no Application uses any more is dropped.
type enginePool struct {
	config *rest.Config
	mapper meta.RESTMapper

	mu     sync.Mutex
	byUser map[string]*engine.Engine
	userOf map[types.NamespacedName]string // the identity each Application last used
}

// newEnginePool returns a pool of engines built from the controller's own
// config (impersonation is added per identity) sharing one REST mapper.
func newEnginePool(config *rest.Config, mapper meta.RESTMapper) *enginePool {
	return &enginePool{config: config, mapper: mapper,
		byUser: map[string]*engine.Engine{}, userOf: map[types.NamespacedName]string{}}
}

// get returns the engine impersonating user, for Application app.
func (p *enginePool) get(app types.NamespacedName, user string) (*engine.Engine, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	prev, had := p.userOf[app]
	p.userOf[app] = user
	if had && prev != user {
		p.dropUnused(prev) // the Application moved to another deployer
	}
	if e, ok := p.byUser[user]; ok {
		return e, nil
	}
	cfg := rest.CopyConfig(p.config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("client impersonating %s: %w", user, err)
	}
	e, err := engine.NewWithMapper(cfg, httpClient, p.mapper, engine.FieldManager)
	if err != nil {
		return nil, fmt.Errorf("engine impersonating %s: %w", user, err)
	}
	p.byUser[user] = e
	return e, nil
}

// forget drops app, and its identity's engine when no other Application uses it.
func (p *enginePool) forget(app types.NamespacedName) {
	p.mu.Lock()
	defer p.mu.Unlock()
	user, ok := p.userOf[app]
	if !ok {
		return
	}
	delete(p.userOf, app)
	p.dropUnused(user)
}

// dropUnused removes user's engine when no Application uses it. p.mu is held.
func (p *enginePool) dropUnused(user string) {
	for _, u := range p.userOf {
		if u == user {
			return
		}
	}
	delete(p.byUser, user)
}

// len is the number of engines held.
func (p *enginePool) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.byUser)
}

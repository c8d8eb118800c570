package controller

import (
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
)

// renderCache keeps each Application's last render and the key it was
// rendered from (repository, commit, namespace, render options), so a
// periodic pass over an unchanged commit renders nothing. It holds one
// entry per Application, dropped when the Application goes.
//
// The objects are shared: whoever gets them must not modify them (the
// engine copies what it changes).
type renderCache struct {
	mu   sync.Mutex
	last map[types.NamespacedName]renderEntry
}

// renderEntry is an Application's last render and what it was rendered from.
type renderEntry struct {
	key  string
	objs []*unstructured.Unstructured
}

func newRenderCache() *renderCache {
	return &renderCache{last: map[types.NamespacedName]renderEntry{}}
}

// get returns app's last render when it was rendered from key.
func (c *renderCache) get(app types.NamespacedName, key string) ([]*unstructured.Unstructured, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.last[app]
	if !ok || e.key != key {
		return nil, false
	}
	return e.objs, true
}

// put records app's render from key, replacing the one before.
func (c *renderCache) put(app types.NamespacedName, key string, objs []*unstructured.Unstructured) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last[app] = renderEntry{key: key, objs: objs}
}

// forget drops app's render.
func (c *renderCache) forget(app types.NamespacedName) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.last, app)
}

// len is the number of Applications with a cached render.
func (c *renderCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.last)
}

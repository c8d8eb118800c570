package controller

import (
	"crypto/sha256"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
)

// renderCache keeps each Application's last render and the key it was
// rendered from (repository, commit, namespace, render options), so a
// periodic pass or a drift revert over an unchanged commit renders
// nothing. It holds one entry per Application, dropped when the
// Application goes.
//
// Objects are kept as their JSON, not as the decoded maps: about a third
// of the memory (a ConfigMap, a Deployment and a Service took 7.5 KiB as
// maps and 2.6 KiB as JSON, measured at 1000 Applications in
// docs/benchmarks.md), and each get hands out objects of its own that the
// caller may change.
type renderCache struct {
	mu   sync.Mutex
	last map[types.NamespacedName]renderEntry
}

// renderEntry is an Application's last render and (a digest of) what it
// was rendered from.
type renderEntry struct {
	key  [sha256.Size]byte
	objs [][]byte
}

func newRenderCache() *renderCache {
	return &renderCache{last: map[types.NamespacedName]renderEntry{}}
}

// get returns app's last render when it was rendered from key.
func (c *renderCache) get(app types.NamespacedName, key string) ([]*unstructured.Unstructured, bool) {
	c.mu.Lock()
	e, ok := c.last[app]
	c.mu.Unlock()
	if !ok || e.key != sha256.Sum256([]byte(key)) {
		return nil, false
	}
	objs := make([]*unstructured.Unstructured, 0, len(e.objs))
	for _, data := range e.objs {
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(data); err != nil {
			return nil, false // not what put stored: render again
		}
		objs = append(objs, u)
	}
	return objs, true
}

// put records app's render from key, replacing the one before. A render
// that cannot be encoded is not kept (the next pass renders again).
func (c *renderCache) put(app types.NamespacedName, key string, objs []*unstructured.Unstructured) {
	e := renderEntry{key: sha256.Sum256([]byte(key)), objs: make([][]byte, 0, len(objs))}
	for _, o := range objs {
		data, err := o.MarshalJSON()
		if err != nil {
			c.forget(app)
			return
		}
		e.objs = append(e.objs, data)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last[app] = e
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

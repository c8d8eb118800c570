package controller

import (
	"crypto/sha256"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/keyless-cd/keyless/internal/readset"
)

// renderCache keeps each Application's last render, the key of the
// options it was rendered with (repository, namespace, options) and what
// it read (readset.Input with their values at the commit rendered), so a
// periodic pass or a drift revert over an unchanged commit renders
// nothing, and neither does a new commit that changes none of the inputs
// (renderinputs.go). It holds one entry per Application, dropped when the
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
	key  [sha256.Size]byte // the render options, without the revision
	repo string            // the repository URL, to find the readers of a push
	// revision is the newest commit the objects are known to be the render
	// of; renderedAt the commit they were rendered at.
	revision, renderedAt string
	// inputs and their values at renderedAt; nil when the render cannot
	// be keyed by them.
	inputs []readset.Input
	values []string
	objs   [][]byte
	// next holds the inputs' values at nextRevision, compared for the whole
	// repository by the changed-first pass (changedfirst.go), so that each
	// reader's own pass does not compute them again.
	nextRevision string
	next         []string
}

func newRenderCache() *renderCache {
	return &renderCache{last: map[types.NamespacedName]renderEntry{}}
}

// lookup returns app's entry when it was rendered with the options of key.
func (c *renderCache) lookup(app types.NamespacedName, key string) (renderEntry, bool) {
	c.mu.Lock()
	e, ok := c.last[app]
	c.mu.Unlock()
	if !ok || e.key != sha256.Sum256([]byte(key)) {
		return renderEntry{}, false
	}
	return e, true
}

// get returns app's last render when it was rendered with key's options
// and is known good for revision.
func (c *renderCache) get(app types.NamespacedName, key, revision string) ([]*unstructured.Unstructured, bool) {
	e, ok := c.lookup(app, key)
	if !ok || e.revision != revision {
		return nil, false
	}
	return e.objects()
}

// objects decodes the entry's objects (each call its own copies).
func (e renderEntry) objects() ([]*unstructured.Unstructured, bool) {
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

// advance records that app's entry, rendered with key's options at from,
// is also the render of revision (its inputs did not change).
func (c *renderCache) advance(app types.NamespacedName, key, from, revision string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.last[app]
	if ok && e.key == sha256.Sum256([]byte(key)) && e.revision == from {
		e.revision = revision
		c.last[app] = e
	}
}

// noteValues records the values of app's inputs at revision (computed for
// every reader of a push at once), when app's entry is still the one
// they were computed for.
func (c *renderCache) noteValues(app types.NamespacedName, inputs []readset.Input, revision string, values []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.last[app]
	if ok && len(e.inputs) == len(inputs) && len(inputs) > 0 && &e.inputs[0] == &inputs[0] {
		e.nextRevision, e.next = revision, values
		c.last[app] = e
	}
}

// put records app's render at revision with key's options, replacing the
// one before; inputs and values may be nil (not keyed by inputs). A
// render that cannot be encoded is not kept (the next pass renders again).
func (c *renderCache) put(app types.NamespacedName, key, repo, revision string, objs []*unstructured.Unstructured, inputs []readset.Input, values []string) {
	e := renderEntry{key: sha256.Sum256([]byte(key)), repo: repo, revision: revision, renderedAt: revision, objs: make([][]byte, 0, len(objs))}
	if inputs != nil && len(values) == len(inputs) {
		e.inputs, e.values = inputs, values
	}
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

// keyedReaders are the Applications whose kept render of repo is keyed by
// its inputs and not yet known good for revision, with those inputs and
// their values.
func (c *renderCache) keyedReaders(repo, revision string) map[types.NamespacedName]renderEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[types.NamespacedName]renderEntry{}
	for app, e := range c.last {
		if e.repo == repo && e.inputs != nil && e.revision != revision {
			out[app] = renderEntry{inputs: e.inputs, values: e.values}
		}
	}
	return out
}

// has says whether app has a render kept, whatever its options.
func (c *renderCache) has(app types.NamespacedName) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.last[app]
	return ok
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

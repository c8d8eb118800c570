package controller

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// staleReads remembers, per Application, the resourceVersion its last status
// write replaced. A reconcile queued while that write was made can run before
// the informer has the new status; finding the replaced version in the cache
// means the cache lags behind keyless's own write, and the reconcile reads the
// Application from the API server instead. Without it, that reconcile saw the
// old lastAppliedRevision and synced (and recorded) the same commit twice.
type staleReads struct {
	mu       sync.Mutex
	replaced map[types.NamespacedName]string
}

func newStaleReads() *staleReads {
	return &staleReads{replaced: map[types.NamespacedName]string{}}
}

// wrote records that a write replaced resourceVersion rv of key.
func (s *staleReads) wrote(key types.NamespacedName, rv string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replaced[key] = rv
}

// isStale reports whether rv, as the cache has key, is one keyless has
// already replaced.
func (s *staleReads) isStale(key types.NamespacedName, rv string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return rv != "" && s.replaced[key] == rv
}

func (s *staleReads) forget(key types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.replaced, key)
}

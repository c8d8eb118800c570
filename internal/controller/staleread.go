package controller

import (
	"slices"
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// staleReads remembers, per Application, the resourceVersions keyless's own
// status writes replaced: the final write of a reconcile and each progress
// write of status.operation before it. A reconcile queued meanwhile can run
// before the informer has the last write; finding any replaced version in
// the cache means the cache lags behind keyless's own writes, and the
// reconcile reads the Application from the API server instead. Without it,
// that reconcile saw the old lastAppliedRevision and synced (and recorded)
// the same commit twice — after an etcd restart the cache lagged by seconds.
type staleReads struct {
	mu       sync.Mutex
	replaced map[types.NamespacedName][]string
}

// maxReplacedVersions bounds the versions remembered per Application (a
// sync writes its progress once per wave and phase).
const maxReplacedVersions = 32

func newStaleReads() *staleReads {
	return &staleReads{replaced: map[types.NamespacedName][]string{}}
}

// wrote records that a write replaced resourceVersion rv of key.
func (s *staleReads) wrote(key types.NamespacedName, rv string) {
	if rv == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.replaced[key]
	if slices.Contains(list, rv) {
		return
	}
	if len(list) == maxReplacedVersions {
		list = list[1:]
	}
	s.replaced[key] = append(list, rv)
}

// isStale reports whether rv, as the cache has key, is one keyless has
// already replaced.
func (s *staleReads) isStale(key types.NamespacedName, rv string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return rv != "" && slices.Contains(s.replaced[key], rv)
}

func (s *staleReads) forget(key types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.replaced, key)
}

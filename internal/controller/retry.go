package controller

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// syncRetries counts, per Application, the failed syncs of one revision
// for spec.syncPolicy.retry. In memory: a controller restart starts the
// count again (a restart is a retry of its own).
type syncRetries struct {
	mu    sync.Mutex
	byApp map[types.NamespacedName]retryCount
}

type retryCount struct {
	revision string
	failures int
}

func newSyncRetries() *syncRetries {
	return &syncRetries{byApp: map[types.NamespacedName]retryCount{}}
}

// failed counts one more failed sync of revision and returns how many
// there were in a row (1 for the first).
func (s *syncRetries) failed(key types.NamespacedName, revision string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.byApp[key]
	if c.revision != revision {
		c = retryCount{revision: revision}
	}
	c.failures++
	s.byApp[key] = c
	return c.failures
}

// reset forgets the count: a sync succeeded, or a new revision, spec or
// request starts again.
func (s *syncRetries) reset(key types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byApp, key)
}

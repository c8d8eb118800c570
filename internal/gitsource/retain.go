package gitsource

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Retain deletes the cached bare repositories and checkouts of every URL not
// in keep: repositories no Application reads any more (deleted, or moved to
// another repoURL), including those left by an earlier run. A URL used
// within grace is kept even if keep lacks it (an Application created after
// the caller listed them), and a checkout still being read is never deleted.
// It returns how many repositories it deleted.
func (s *Source) Retain(keep []string, grace time.Duration) (int, error) {
	kept := map[string]bool{}
	for _, u := range keep {
		kept[hashOf(u)] = true
	}
	dropped := map[string]*repo{}
	s.mu.Lock()
	for url, r := range s.repos {
		h := hashOf(url)
		switch {
		case kept[h]:
		case time.Since(r.lastUse()) < grace:
			kept[h] = true
		default:
			delete(s.repos, url) // the next user starts a fresh entry and folder
			dropped[h] = r
		}
	}
	s.mu.Unlock()

	removed := 0
	reposDir := filepath.Join(s.opts.CacheDir, "repos")
	entries, err := os.ReadDir(reposDir)
	if err != nil && !os.IsNotExist(err) {
		return 0, fmt.Errorf("reading git cache: %w", err)
	}
	for _, e := range entries {
		if kept[e.Name()] {
			continue
		}
		if err := removeRepo(dropped[e.Name()], filepath.Join(reposDir, e.Name())); err != nil {
			return removed, fmt.Errorf("deleting unused git cache %s: %w", e.Name(), err)
		}
		removed++
	}

	s.coMu.Lock()
	defer s.coMu.Unlock()
	root := filepath.Join(s.opts.CacheDir, "checkouts")
	entries, err = os.ReadDir(root)
	if err != nil {
		return removed, fmt.Errorf("reading git cache: %w", err)
	}
	for _, e := range entries {
		h, _, _ := strings.Cut(e.Name(), "-")
		d := filepath.Join(root, strings.TrimSuffix(e.Name(), treeSuffix))
		if kept[h] || s.inUse[d] > 0 {
			continue
		}
		if err := removeCheckout(d); err != nil {
			return removed, fmt.Errorf("deleting unused checkout %s: %w", e.Name(), err)
		}
		s.forget(d)
	}
	return removed, nil
}

// removeRepo deletes a bare repository folder, waiting for a fetch or
// checkout still running in it (r is nil for a folder of an earlier run).
func removeRepo(r *repo, dir string) error {
	if r != nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.opened = nil
		r.commitsMu.Lock()
		r.commits = nil // no longer there
		r.commitsMu.Unlock()
	}
	return removeTree(dir)
}

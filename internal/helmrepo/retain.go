package helmrepo

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Retain deletes the cached chart archives whose digest ("sha256:…") is not
// in keep and that were not fetched or used within maxAge (a dependency's
// archive is used by every render of its chart, not named by a revision).
// It returns how many it deleted.
func (f *Fetcher) Retain(keep map[string]bool, maxAge time.Duration) (int, error) {
	dir := filepath.Join(f.opts.CacheDir, chartsDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return 0, nil
		}
		return 0, fmt.Errorf("reading the chart cache: %w", err)
	}
	removed := 0
	for _, e := range entries {
		hex, ok := strings.CutPrefix(strings.TrimSuffix(e.Name(), ".tgz"), "sha256-")
		if !ok || !strings.HasSuffix(e.Name(), ".tgz") || keep["sha256:"+hex] {
			continue
		}
		info, err := e.Info()
		if err != nil || time.Since(info.ModTime()) < maxAge {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			return removed, fmt.Errorf("deleting cached chart %s: %w", e.Name(), err)
		}
		removed++
	}
	return removed, nil
}

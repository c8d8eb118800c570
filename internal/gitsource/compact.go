package gitsource

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5"
)

// A cached repository starts afresh past Options.MaxPacks packs.
//
// Every fetch adds one pack (the change from the previous tip, or a
// commit's whole tree), and nothing is ever deleted from a repository an
// Application still reads: on a busy monorepo the cache would grow by a pack
// per push for as long as the controller runs, and every object lookup
// visits every pack's index. So before a fetch, a repository holding more
// than MaxPacks packs is deleted and created again empty: the fetch then
// brings the new commit's whole tree (depth 1), and the next ones their
// changes again. What was read from it is forgotten with it (the commits'
// metadata), so an older commit asked for again is fetched again; checkouts
// are separate folders and stay. Amortised, a depth-1 fetch per MaxPacks
// commits; on disk, at most MaxPacks packs per repository.

// packCount is how many packs the repository folder holds.
func (r *repo) packCount() int {
	entries, err := os.ReadDir(filepath.Join(r.dir, "objects", "pack"))
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "pack-") && filepath.Ext(e.Name()) == ".pack" {
			n++
		}
	}
	return n
}

// startAfresh deletes the repository folder and opens a new, empty one.
// The caller holds r.mu.
func (r *repo) startAfresh() (*git.Repository, error) {
	r.opened = nil
	r.commitsMu.Lock()
	r.commits = nil
	r.commitsMu.Unlock()
	if err := removeTree(r.dir); err != nil {
		return nil, err
	}
	return r.open()
}

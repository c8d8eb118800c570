package gitsource

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
)

// Options configure a Source. Zero fields take the documented defaults.
type Options struct {
	// CacheDir holds one bare repository per URL and the checkouts. Required.
	CacheDir string
	// LsRemoteTTL lets Applications sharing a repository (and credential)
	// share one ls-remote within this window. Default 1s.
	LsRemoteTTL time.Duration
	// MaxCheckoutBytes bounds the files written for one commit. Default 256 MiB.
	MaxCheckoutBytes int64
	// MaxCheckoutFiles bounds the number of files of one commit. Default 20000.
	MaxCheckoutFiles int
	// KeepCheckouts is how many checkouts per repository are kept after
	// use (most recently used first); older ones not in use are deleted.
	// Default 4.
	KeepCheckouts int
	// Timeout bounds each ls-remote and each fetch: a server that accepts
	// and never answers holds a worker no longer than this. Default 60s.
	Timeout time.Duration
	// MaxRefs bounds the refs one ls-remote may advertise. Default 50000.
	MaxRefs int
	// MaxAdvertisementBytes bounds the bytes of one ls-remote answer.
	// Default 64 MiB.
	MaxAdvertisementBytes int64
	// MaxFetchBytes bounds the bytes of one fetch (the pack). Default 512 MiB.
	MaxFetchBytes int64
	// MaxPacks is how many packs (one per fetch) a cached repository may
	// hold before a fetch deletes it and starts it afresh (compact.go).
	// Default 64.
	MaxPacks int
	// Observe, when set, is told of every ls-remote and fetch of url (for metrics).
	Observe func(op, url string, d time.Duration, err error)
}

// Source is the shared Git cache of a controller. It is safe for concurrent use.
//
// Lock order: s.mu is held only to find or drop a repo entry (and to touch
// it: s.mu before repo.usedMu). repo.mu (one fetch or checkout write per URL
// at a time) may be held while taking s.coMu, never the other way round, and
// never while holding s.mu. repo.lsMu and repo.usedMu are leaves. Verbs live
// one per file: resolve.go, fetch.go, checkout.go, retain.go.
type Source struct {
	opts  Options
	mu    sync.Mutex
	repos map[string]*repo

	coMu     sync.Mutex
	inUse    map[string]int            // checkout dir → holders
	lastUsed map[string]time.Time      // checkout dir → last Checkout
	verified map[string]bool           // checkout dirs written or verified by this process
	stats    map[string]*checkoutStats // checkout dirs written by this process → what they hold

	// changeFetches counts the fetches that took only a commit's change
	// (incremental.go).
	changeFetches atomic.Int64
	// refusedPacks counts the incremental packs refused as incomplete.
	refusedPacks atomic.Int64
}

type repo struct {
	mu sync.Mutex // serialises fetch and checkout of this URL
	// opened is the repository, opened once under mu and kept: its pack
	// indexes are read once, not at every lookup (a monorepo's commit is
	// read by each of its Applications). Dropped with the entry.
	opened *git.Repository
	// closeOpened drops opened openIdle after its last use, so a
	// repository at rest holds no pack indexes or cached objects.
	closeOpened *time.Timer
	url         string
	dir         string
	lsMu        sync.Mutex
	lsAt        map[string]time.Time // credential hash → time of last ls-remote
	lsRefs      map[string][]*plumbing.Reference

	usedMu sync.Mutex
	used   time.Time // last Resolve, Fetch or Checkout, for Retain

	sshHanging atomic.Bool // an SSH operation past its deadline still runs

	// commits remembers the metadata of commits read from this repository
	// (commit.go): a commit known here is in the cached repository.
	commitsMu sync.Mutex
	commits   map[string]*Commit
}

func (r *repo) touch() {
	r.usedMu.Lock()
	r.used = time.Now()
	r.usedMu.Unlock()
}

func (r *repo) lastUse() time.Time {
	r.usedMu.Lock()
	defer r.usedMu.Unlock()
	return r.used
}

// Revision is a resolved target revision.
type Revision struct {
	// Ref is the full ref name (refs/heads/main), or "" for a commit SHA.
	Ref string
	// SHA is the commit.
	SHA string
}

// New returns a Source caching in opts.CacheDir.
func New(opts Options) (*Source, error) {
	if opts.CacheDir == "" {
		return nil, errors.New("gitsource: a cache dir is required")
	}
	if opts.LsRemoteTTL == 0 {
		opts.LsRemoteTTL = time.Second
	}
	if opts.MaxCheckoutBytes == 0 {
		opts.MaxCheckoutBytes = 256 << 20
	}
	if opts.MaxCheckoutFiles == 0 {
		opts.MaxCheckoutFiles = 20000
	}
	if opts.KeepCheckouts == 0 {
		opts.KeepCheckouts = 4
	}
	if opts.Timeout == 0 {
		opts.Timeout = 60 * time.Second
	}
	if opts.MaxRefs == 0 {
		opts.MaxRefs = 50000
	}
	if opts.MaxAdvertisementBytes == 0 {
		opts.MaxAdvertisementBytes = 64 << 20
	}
	if opts.MaxFetchBytes == 0 {
		opts.MaxFetchBytes = 512 << 20
	}
	if opts.MaxPacks == 0 {
		opts.MaxPacks = 64
	}
	installCappedHTTP()
	if err := os.MkdirAll(filepath.Join(opts.CacheDir, "checkouts"), 0o700); err != nil {
		return nil, fmt.Errorf("creating git cache: %w", err)
	}
	return &Source{opts: opts, repos: map[string]*repo{}, inUse: map[string]int{}, lastUsed: map[string]time.Time{}, verified: map[string]bool{}, stats: map[string]*checkoutStats{}}, nil
}

func hashOf(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:8])
}

func (s *Source) repo(url string) *repo {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.repos[url]
	if !ok {
		r = &repo{url: url, dir: filepath.Join(s.opts.CacheDir, "repos", hashOf(url)), lsAt: map[string]time.Time{}, lsRefs: map[string][]*plumbing.Reference{}}
		s.repos[url] = r
	}
	r.touch()
	return r
}

func (s *Source) observe(op, url string, start time.Time, err error) {
	if s.opts.Observe != nil {
		s.opts.Observe(op, url, time.Since(start), err)
	}
}

var shaRE = regexp.MustCompile(`^[0-9a-f]{40}$`)

// maxCredentialsPerRepo bounds the ls-remote results kept per repository
// (one per credential).
const maxCredentialsPerRepo = 64

// ErrTooManyRefs is returned (wrapped) when a server advertises more refs
// than Options.MaxRefs.
var ErrTooManyRefs = errors.New("too many refs")

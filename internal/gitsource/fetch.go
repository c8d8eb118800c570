package gitsource

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// Fetching a resolved revision into the bare repository of its URL.

// remoteName is the one remote of every cached repository.
const remoteName = "origin"

// Fetch makes sure rev's commit is in the cache, fetching (shallow, just that
// ref) only when it is missing. The caller must have resolved rev with its
// own credential first, so the shared cache never serves a repository to
// someone who cannot read it.
func (s *Source) Fetch(ctx context.Context, url string, rev Revision, auth transport.AuthMethod) error {
	auth, isSSH := withSSHTimeout(auth, s.opts.Timeout)
	if !isSSH {
		return redactErr(url, s.fetch(ctx, url, rev, auth))
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	_, err := boundSSH(ctx, &s.repo(url).sshHanging, s.opts.Timeout, func() (struct{}, error) {
		return struct{}{}, s.fetch(ctx, url, rev, auth)
	})
	return redactErr(url, err)
}

func (s *Source) fetch(ctx context.Context, url string, rev Revision, auth transport.AuthMethod) error {
	if s.repo(url).knownCommit(rev.SHA) != nil {
		return nil // read from this repository before: it is there
	}
	repo, unlock, err := s.openLocked(url)
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := repo.CommitObject(plumbing.NewHash(rev.SHA)); err == nil {
		return nil
	}
	if r := s.repo(url); r.packCount() > s.opts.MaxPacks {
		if repo, err = r.startAfresh(); err != nil { // compact.go
			return fmt.Errorf("starting the git cache of %s afresh: %w", url, err)
		}
	}
	// The remote is built from the URL the caller resolved, never read from
	// the cached repository's config: nothing in the cache decides where a
	// credential is sent.
	start := time.Now()
	// The change from the ref's previous tip when that is enough
	// (incremental.go), else the commit's whole tree.
	incremental, err := s.fetchIncremental(ctx, s.repo(url), repo, url, rev, auth)
	if !incremental && err == nil {
		rem := git.NewRemote(repo.Storer, &config.RemoteConfig{Name: remoteName, URLs: []string{url}})
		err = s.fetchRevision(ctx, rem, rev, auth)
	}
	s.observe("fetch", url, start, err)
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			err = fmt.Errorf("no answer within %s (--git-timeout): %w", s.opts.Timeout, err)
		}
		return fmt.Errorf("fetching %s from %s: %w", rev.SHA, url, explain(err))
	}
	if _, err := repo.CommitObject(plumbing.NewHash(rev.SHA)); err != nil {
		return fmt.Errorf("commit %s is not in %s (was the branch force-pushed?): %w", rev.SHA, url, err)
	}
	return nil
}

// fetchRevision fetches just what rev needs: the tip of its ref (depth 1),
// or for a bare commit SHA that commit alone (depth 1) when the server allows
// wants by SHA, else every branch.
func (s *Source) fetchRevision(ctx context.Context, rem *git.Remote, rev Revision, auth transport.AuthMethod) error {
	ctx, cancel := context.WithTimeout(withReadCap(ctx, s.opts.MaxFetchBytes), s.opts.Timeout)
	defer cancel()
	opts := &git.FetchOptions{RemoteName: remoteName, Auth: auth, Tags: git.NoTags, Force: true, Depth: 1}
	switch {
	case rev.Ref != "" && rev.Ref != "HEAD":
		opts.RefSpecs = []config.RefSpec{config.RefSpec("+" + rev.Ref + ":" + string(localRef(rev)))}
	case rev.Ref == "HEAD":
		opts.RefSpecs = []config.RefSpec{config.RefSpec("+HEAD:" + string(localRef(rev)))}
	default:
		opts.RefSpecs = []config.RefSpec{config.RefSpec(rev.SHA + ":refs/keyless/pinned/" + rev.SHA)}
		err := rem.FetchContext(ctx, opts)
		if !errors.Is(err, git.ErrExactSHA1NotSupported) {
			return err
		}
		opts.Depth = 0
		opts.RefSpecs = []config.RefSpec{"+refs/heads/*:refs/keyless/heads/*", "+HEAD:refs/keyless/HEAD"}
	}
	return rem.FetchContext(ctx, opts)
}

// openLocked opens url's cached repository (creating it when missing) and
// holds its lock, so no fetch or checkout write of that URL runs meanwhile;
// call unlock when done.
func (s *Source) openLocked(url string) (repo *git.Repository, unlock func(), err error) {
	r := s.repo(url)
	r.mu.Lock()
	if repo, err = r.open(); err != nil {
		r.mu.Unlock()
		return nil, nil, err
	}
	return repo, r.mu.Unlock, nil
}

func (r *repo) open() (*git.Repository, error) {
	if r.closeOpened == nil {
		r.closeOpened = time.AfterFunc(openIdle, func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.opened = nil
		})
	} else {
		r.closeOpened.Reset(openIdle)
	}
	if r.opened != nil {
		return r.opened, nil
	}
	if _, err := r.openDir(); err != nil {
		return nil, err
	}
	// Scratch folders of incremental fetches a crash left behind.
	if left, err := filepath.Glob(filepath.Join(r.dir, incomingPrefix+"*")); err == nil {
		for _, dir := range left {
			_ = os.RemoveAll(dir)
		}
	}
	// Open the folder again with a small object cache: PlainOpen's holds up
	// to 96 MiB of decoded objects, and this instance lives as long as the
	// entry.
	st := filesystem.NewStorage(osfs.New(r.dir), cache.NewObjectLRU(repoObjectCache))
	repo, err := git.Open(st, nil)
	if err != nil {
		return nil, fmt.Errorf("opening git cache %s: %w", r.dir, err)
	}
	r.opened = repo
	return repo, nil
}

// openIdle is how long an opened repository is kept after its last use.
const openIdle = 10 * time.Second

// repoObjectCache bounds the decoded objects kept per repository.
const repoObjectCache = 1 * cache.MiByte

// openDir opens (or creates) the bare repository folder.
func (r *repo) openDir() (*git.Repository, error) {
	repo, err := git.PlainOpen(r.dir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		if repo, err = git.PlainInit(r.dir, true); err != nil {
			return nil, fmt.Errorf("creating git cache %s: %w", r.dir, err)
		}
		if _, err := repo.CreateRemote(&config.RemoteConfig{Name: remoteName, URLs: []string{r.url}}); err != nil {
			return nil, fmt.Errorf("creating git cache %s: %w", r.dir, err)
		}
		return repo, nil
	}
	if err != nil {
		return nil, fmt.Errorf("opening git cache %s: %w", r.dir, err)
	}
	return repo, nil
}

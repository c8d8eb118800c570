package bump

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// Attempt makes a change on the local branch's current tip and commits it
// (the local branch then points at the commit). It reports false when the
// tip already holds the change: nothing to commit.
type Attempt func(n int) (commit plumbing.Hash, changed bool, err error)

// PushOptions configure PushRetrying.
type PushOptions struct {
	// Branch is pushed to origin's branch of the same name. Required.
	Branch string
	// Auth is the Git credential.
	Auth transport.AuthMethod
	// Timeout bounds the retries of a rejected push: retried with
	// exponential backoff and full jitter until it. Default DefaultTimeout.
	Timeout time.Duration
	// Retries, when set, also bounds how often a rejected push is retried.
	// Default 0: until Timeout.
	Retries int
	// FetchDepth is the depth of the fetch of a moved tip; 0 fetches what
	// is missing (a full clone must not become shallow). Default 0.
	FetchDepth int
	// Reset moves the local branch (and a worktree) to tip, the remote
	// branch's new tip, before the next attempt. Required.
	Reset func(tip plumbing.Hash) error
}

// Pushed is what PushRetrying did.
type Pushed struct {
	// Commit is the commit pushed ("" when there was nothing to commit).
	Commit   string
	Attempts int
}

// DefaultTimeout is how long a rejected push is retried by default: many
// pipelines bumping one branch at once all land within it.
const DefaultTimeout = 5 * time.Minute

// Backoff bounds: the first retry waits up to backoffBase, each next one up
// to twice as long, never more than backoffCap.
const (
	backoffBase = 100 * time.Millisecond
	backoffCap  = 5 * time.Second
)

// fullJitter is the wait before retry n (1, 2, …): uniform in [0, min(cap,
// base·2^(n-1))) — AWS's "full jitter", which spreads many pipelines racing
// for one branch best.
func fullJitter(n int) time.Duration {
	ceiling := backoffCap
	if n < 32 {
		ceiling = min(backoffCap, backoffBase<<(n-1))
	}
	return time.Duration(rand.Int64N(int64(ceiling)))
}

// PushRetrying runs attempt and pushes its commit. A push rejected because
// someone pushed first is retried: the new tip is fetched, opts.Reset moves
// the branch to it and attempt makes the same change again on it (not a
// rebase of the old commit), with exponential backoff and full jitter, until
// opts.Timeout (and at most opts.Retries times when set). Nothing is pushed
// when an attempt has nothing to commit.
func PushRetrying(ctx context.Context, repo *git.Repository, opts PushOptions, attempt Attempt) (Pushed, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	deadline := time.Now().Add(opts.Timeout)
	var res Pushed
	branch := plumbing.NewBranchReferenceName(opts.Branch)
	for n := 1; ; n++ {
		res.Attempts = n
		hash, changed, err := attempt(n)
		if err != nil || !changed {
			return res, err
		}
		err = repo.PushContext(ctx, &git.PushOptions{RemoteName: "origin", Auth: opts.Auth,
			RefSpecs: []config.RefSpec{config.RefSpec(branch + ":" + branch)}})
		if err == nil {
			res.Commit = hash.String()
			return res, nil
		}
		if !isRejected(err) || (opts.Retries > 0 && n > opts.Retries) {
			return res, fmt.Errorf("pushing %s (attempt %d): %w", opts.Branch, n, err)
		}
		backoff := fullJitter(n)
		if time.Now().Add(backoff).After(deadline) {
			return res, fmt.Errorf("pushing %s: still rejected after %d attempts within %s (the branch keeps moving; raise --timeout): %w", opts.Branch, n, opts.Timeout, err)
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(backoff):
		}
		tip, err := fetchTip(ctx, repo, opts)
		if err != nil {
			return res, err
		}
		if err := opts.Reset(tip); err != nil {
			return res, err
		}
	}
}

func isRejected(err error) bool {
	// go-git checks fast-forward locally: a remote tip it has never seen (a
	// shallow clone, someone pushed first) shows as a missing object.
	if errors.Is(err, git.ErrNonFastForwardUpdate) || errors.Is(err, plumbing.ErrObjectNotFound) {
		return true
	}
	msg := err.Error()
	for _, s := range []string{"non-fast-forward", "fetch first", "failed to update ref", "failed to lock", "stale info", "cannot lock ref"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// fetchTip fetches origin's opts.Branch and returns its tip.
func fetchTip(ctx context.Context, repo *git.Repository, opts PushOptions) (plumbing.Hash, error) {
	remoteRef := plumbing.NewRemoteReferenceName("origin", opts.Branch)
	err := repo.FetchContext(ctx, &git.FetchOptions{RemoteName: "origin", Auth: opts.Auth, Depth: opts.FetchDepth, Force: true,
		RefSpecs: []config.RefSpec{config.RefSpec("+" + plumbing.NewBranchReferenceName(opts.Branch) + ":" + remoteRef)}})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return plumbing.ZeroHash, fmt.Errorf("fetching the new tip of %s: %w", opts.Branch, err)
	}
	ref, err := repo.Reference(remoteRef, true)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	return ref.Hash(), nil
}

package controller

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// DefaultSyncTimeout is Options.SyncTimeout's default: two waves of the
// default --hook-timeout.
const DefaultSyncTimeout = 10 * time.Minute

// DefaultMaxWaves is Options.MaxWaves's default.
const DefaultMaxWaves = 32

// errSyncDeadline is the cause of a sync context ended by --sync-timeout.
var errSyncDeadline = errors.New("--sync-timeout reached")

// SyncTimeoutError is a sync stopped by --sync-timeout: the waves it
// applied stay applied (and in the inventory), later ones were not, and the
// last good state keeps running. It is not permanent: the next attempt
// comes with the usual backoff and finds the waves done before healthy.
type SyncTimeoutError struct {
	// Timeout is --sync-timeout.
	Timeout time.Duration
	// Err is where the engine was when the deadline stopped it.
	Err error
}

func (e *SyncTimeoutError) Error() string {
	return fmt.Sprintf("sync exceeded --sync-timeout (%s) and was stopped, later waves were not applied and no SyncFail hook ran; the last good state keeps running and the sync is retried with backoff: %v", e.Timeout, e.Err)
}

// Unwrap is context.DeadlineExceeded only: what the deadline cut short
// (a wave not yet healthy, a hook still running) is no failure of its own.
func (e *SyncTimeoutError) Unwrap() error { return context.DeadlineExceeded }

// withSyncDeadline gives one sync's apply (every wave, hook and the prune)
// at most timeout (none when timeout is 0).
func withSyncDeadline(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeoutCause(ctx, timeout, errSyncDeadline)
}

// syncDeadlineError is err, or a *SyncTimeoutError when the sync's
// deadline (not the controller's own shutdown) ended syncCtx before err.
func syncDeadlineError(syncCtx context.Context, timeout time.Duration, err error) error {
	if err == nil || !errors.Is(context.Cause(syncCtx), errSyncDeadline) {
		return err
	}
	return &SyncTimeoutError{Timeout: timeout, Err: err}
}

// checkSyncTimeout refuses a --sync-timeout shorter than --hook-timeout:
// no sync could then wait out one wave.
func checkSyncTimeout(syncTimeout, hookTimeout time.Duration) error {
	if syncTimeout < hookTimeout {
		return fmt.Errorf("--sync-timeout (%s) is shorter than --hook-timeout (%s): no sync could wait out one wave; raise --sync-timeout or lower --hook-timeout", syncTimeout, hookTimeout)
	}
	return nil
}

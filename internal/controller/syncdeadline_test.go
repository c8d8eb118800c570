package controller

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keyless-cd/keyless/internal/engine"
	"github.com/keyless-cd/keyless/internal/lifecycle"
)

func TestSyncDeadlineError(t *testing.T) {
	stepErr := &engine.StepError{Phase: lifecycle.PhaseSync, Wave: 3, Err: engine.ErrNotReady}
	expired := func() context.Context {
		ctx, cancel := withSyncDeadline(t.Context(), time.Nanosecond)
		t.Cleanup(cancel)
		<-ctx.Done()
		return ctx
	}
	shutDown := func() context.Context {
		parent, stop := context.WithCancel(t.Context())
		ctx, cancel := withSyncDeadline(parent, time.Hour)
		t.Cleanup(cancel)
		stop()
		return ctx
	}
	running := func() context.Context {
		ctx, cancel := withSyncDeadline(t.Context(), time.Hour)
		t.Cleanup(cancel)
		return ctx
	}
	for _, tc := range []struct {
		name    string
		ctx     context.Context
		err     error
		timeout bool
	}{
		{"the deadline cut a wave", expired(), stepErr, true},
		{"the controller shuts down", shutDown(), stepErr, false},
		{"a wave failed before the deadline", running(), stepErr, false},
		{"success at the deadline", expired(), nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := syncDeadlineError(tc.ctx, 10*time.Minute, tc.err)
			var st *SyncTimeoutError
			if errors.As(got, &st) != tc.timeout {
				t.Fatalf("got %v, SyncTimeoutError wanted: %v", got, tc.timeout)
			}
			if !tc.timeout {
				if !errors.Is(got, tc.err) {
					t.Errorf("got %v, want %v unchanged", got, tc.err)
				}
				return
			}
			// Not permanent: retried with backoff, though what it cut was a StepError.
			if engine.IsPermanent(got) || !errors.Is(got, context.DeadlineExceeded) {
				t.Errorf("permanent %v, DeadlineExceeded %v: want a transient DeadlineExceeded", engine.IsPermanent(got), errors.Is(got, context.DeadlineExceeded))
			}
			for _, want := range []string{"sync exceeded --sync-timeout (10m0s)", "Sync wave 3"} {
				if !strings.Contains(got.Error(), want) {
					t.Errorf("message %q does not say %q", got, want)
				}
			}
		})
	}
}

func TestSyncLimitDefaults(t *testing.T) {
	opts, err := Options{Namespaces: []string{"a"}, Concurrency: 6}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if opts.SyncTimeout != DefaultSyncTimeout || opts.MaxWaves != DefaultMaxWaves || opts.MaxConcurrentPerNamespace != 3 {
		t.Errorf("defaults: --sync-timeout %s, --max-waves %d, --max-concurrent-per-namespace %d", opts.SyncTimeout, opts.MaxWaves, opts.MaxConcurrentPerNamespace)
	}
	if opts, _ := (Options{Namespaces: []string{"a"}, Concurrency: 1}).withDefaults(); opts.MaxConcurrentPerNamespace != 1 {
		t.Errorf("--concurrency 1: --max-concurrent-per-namespace %d, want 1", opts.MaxConcurrentPerNamespace)
	}
	_, err = Options{Namespaces: []string{"a"}, HookTimeout: 20 * time.Minute}.withDefaults()
	if err == nil || !strings.Contains(err.Error(), "--sync-timeout (10m0s) is shorter than --hook-timeout (20m0s)") {
		t.Errorf("a --sync-timeout below --hook-timeout: got %v", err)
	}
}

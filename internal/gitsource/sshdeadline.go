package gitsource

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
)

// ErrSSHHanging is returned (wrapped) when an earlier SSH operation on the
// same repository has not ended yet: its server accepted the connection
// and never finished the handshake.
var ErrSSHHanging = errors.New("an earlier SSH connection to this repository is still hanging")

// go-git's SSH transport honours a context only once connected: the TCP dial
// is bounded by ClientConfig.Timeout, the handshake by nothing. So an SSH
// operation runs in its own goroutine and the caller stops waiting at the
// deadline; at most one such abandoned operation per repository is left
// running (ErrSSHHanging until it ends), holding no worker.

// sshTimeoutAuth sets the TCP dial timeout of an SSH credential.
type sshTimeoutAuth struct {
	gitssh.AuthMethod
	timeout time.Duration
}

func (a sshTimeoutAuth) ClientConfig() (*ssh.ClientConfig, error) {
	c, err := a.AuthMethod.ClientConfig()
	if c != nil {
		c.Timeout = a.timeout
	}
	return c, err
}

// withSSHTimeout returns auth with its dial bounded, and whether it is SSH.
func withSSHTimeout(auth transport.AuthMethod, timeout time.Duration) (transport.AuthMethod, bool) {
	a, ok := auth.(gitssh.AuthMethod)
	if !ok {
		return auth, false
	}
	return sshTimeoutAuth{AuthMethod: a, timeout: timeout}, true
}

// boundSSH runs fn, returning at ctx's deadline even if fn does not.
func boundSSH[T any](ctx context.Context, hanging *atomic.Bool, timeout time.Duration, fn func() (T, error)) (T, error) {
	var zero T
	if !hanging.CompareAndSwap(false, true) {
		return zero, fmt.Errorf("%w (no answer within %s, --git-timeout)", ErrSSHHanging, timeout)
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := fn()
		hanging.Store(false)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		return zero, fmt.Errorf("no answer within %s (--git-timeout): %w", timeout, ctx.Err())
	}
}

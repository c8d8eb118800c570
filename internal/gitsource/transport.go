package gitsource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport/client"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

// ErrResponseTooLarge is returned (wrapped) when a Git server sends more
// bytes for one ls-remote or fetch than Options.MaxAdvertisementBytes or
// Options.MaxFetchBytes allow.
var ErrResponseTooLarge = errors.New("git server response too large")

// readCapKey carries the byte cap of one Git operation in its context.
type readCapKey struct{}

// withReadCap makes every HTTP response read by go-git under ctx fail once
// it passes limit bytes.
func withReadCap(ctx context.Context, limit int64) context.Context {
	return context.WithValue(ctx, readCapKey{}, limit)
}

var installTransport sync.Once

// installCappedHTTP replaces go-git's http and https transports (a process
// wide table) with one that honours the caps of withReadCap. Requests
// without a cap in their context are untouched, so other users of go-git in
// the process see no change.
func installCappedHTTP() {
	installTransport.Do(func() {
		base := http.DefaultTransport.(*http.Transport).Clone()
		c := githttp.NewClient(&http.Client{Transport: cappedTransport{next: base}})
		client.InstallProtocol("http", c)
		client.InstallProtocol("https", c)
	})
}

type cappedTransport struct{ next http.RoundTripper }

func (t cappedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := t.next.RoundTrip(req)
	if err != nil {
		return res, err
	}
	if limit, ok := req.Context().Value(readCapKey{}).(int64); ok && limit > 0 {
		res.Body = &cappedBody{rc: res.Body, left: limit, limit: limit}
	}
	return res, nil
}

// cappedBody fails a read past its limit with ErrResponseTooLarge rather
// than ending early: a truncated pack must not look like a complete one.
type cappedBody struct {
	rc          io.ReadCloser
	left, limit int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One more byte tells a body of exactly limit bytes from a longer one.
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("more than %d bytes: %w", b.limit, ErrResponseTooLarge)
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *cappedBody) Close() error { return b.rc.Close() }

// Bounded returns ctx bounded like the controller's fetch: every HTTP(S)
// response go-git reads under it fails with ErrResponseTooLarge past
// maxBytes, and it ends after timeout. For one-off Git operations outside a
// Source (the CLI's clones for history --changes and rollback).
func Bounded(ctx context.Context, maxBytes int64, timeout time.Duration) (context.Context, context.CancelFunc) {
	installCappedHTTP()
	return context.WithTimeout(withReadCap(ctx, maxBytes), timeout)
}

// Package egress is the HTTP client the controller uses for requests whose
// address a tenant chose (commit statuses, notifications): bounded in time
// and size, never redirected, and never dialling the node's own or
// link-local addresses (the cloud metadata endpoint) unless loopback is
// allowed for tests and demos.
package egress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// ErrRefusedAddress is returned when a request would reach an address a
// tenant may not send the controller to.
var ErrRefusedAddress = errors.New("address refused")

// MaxResponseBytes is how much of a response body is read (the rest is dropped).
const MaxResponseBytes = 64 << 10

// Options configure NewClient.
type Options struct {
	// AllowLoopback lets requests reach loopback addresses and plain http://
	// (tests and demos only). Default false.
	AllowLoopback bool
	// Timeout bounds a whole request. Default 10s.
	Timeout time.Duration
}

// NewClient returns the guarded client: the address check runs on the
// resolved IP at connect time, so a DNS answer cannot rebind it.
func NewClient(opts Options) *http.Client {
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Second
	}
	dialer := &net.Dialer{Timeout: opts.Timeout, Control: func(_, address string, _ syscall.RawConn) error {
		return checkAddress(address, opts.AllowLoopback)
	}}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   opts.Timeout,
		ResponseHeaderTimeout: opts.Timeout,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   opts.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a redirect could lead anywhere
		},
	}
}

func checkAddress(address string, allowLoopback bool) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %q is not an IP address", ErrRefusedAddress, address)
	}
	ip := ap.Addr().Unmap()
	switch {
	case ip.IsLoopback() && allowLoopback:
		return nil
	case ip.IsLoopback(), ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast(), ip.IsUnspecified(),
		ip.IsMulticast(), ip.IsInterfaceLocalMulticast():
		return fmt.Errorf("%w: %s is a loopback, link-local or unspecified address", ErrRefusedAddress, ip)
	}
	return nil
}

// CheckURL refuses a URL that is not https:// (http:// only with
// allowInsecure) or carries credentials; field names it in the error.
func CheckURL(field, raw string, allowInsecure bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowInsecure:
	default:
		return nil, fmt.Errorf("%w: %s must be an https:// URL", ErrRefusedAddress, field)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%w: %s has no host", ErrRefusedAddress, field)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%w: %s must not carry credentials (put them in the Secret)", ErrRefusedAddress, field)
	}
	return u, nil
}

// StatusError is a response outside 2xx.
type StatusError struct {
	Code int
	// Body is the start of the response (at most 300 bytes), for the message.
	Body string
}

func (e *StatusError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("HTTP %d", e.Code)
	}
	return fmt.Sprintf("HTTP %d: %s", e.Code, e.Body)
}

// Permanent reports whether retrying cannot help (4xx other than 408/429).
func (e *StatusError) Permanent() bool {
	return e.Code >= 400 && e.Code < 500 && e.Code != http.StatusRequestTimeout && e.Code != http.StatusTooManyRequests
}

// Do sends req and returns the bounded response body; a status outside
// 2xx is a *StatusError.
func Do(ctx context.Context, c *http.Client, req *http.Request) ([]byte, error) {
	resp, err := c.Do(req.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("reading the response: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		snippet := string(body)
		if len(snippet) > 300 {
			snippet = snippet[:300]
		}
		return body, &StatusError{Code: resp.StatusCode, Body: snippet}
	}
	return body, nil
}

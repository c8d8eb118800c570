// Package egress is the HTTP client the controller uses for requests whose
// address a tenant chose (commit statuses, notifications): bounded in time
// and size, never redirected, and never dialling the node's own, link-local,
// cloud metadata, carrier-grade NAT or unique-local addresses, nor the
// cluster's own ranges the admin lists (Options.DenyCIDRs), also when such an
// address is embedded in an IPv6 one (IPv4-mapped, IPv4-compatible, NAT64,
// 6to4). See the rules in docs/security.md.
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
	"strings"
	"syscall"
	"time"
)

// ErrRefusedAddress is returned when a request would reach an address a
// tenant may not send the controller to. A refusal by the address check is a
// *RefusedError wrapping it.
var ErrRefusedAddress = errors.New("address refused")

// ErrBadCIDR is returned by ParseCIDRs for a value that is not a CIDR.
var ErrBadCIDR = errors.New("not a CIDR")

// MaxResponseBytes is how much of a response body is read (the rest is dropped).
const MaxResponseBytes = 64 << 10

// Options configure NewClient.
type Options struct {
	// AllowLoopback lets requests reach loopback addresses and plain http://
	// (tests and demos only). DenyCIDRs still wins over it. Default false.
	AllowLoopback bool
	// DenyCIDRs are refused in addition to the built-in rules: the cluster's
	// own pod and service ranges (the controller's --egress-deny-cidrs).
	// Default none.
	DenyCIDRs []netip.Prefix
	// AllowCIDRs are let through although DenyCIDRs or a default refusal of
	// a private-use range (100.64.0.0/10, fc00::/7, 64:ff9b:1::/48) covers
	// them: a forge inside the cluster (the controller's
	// --egress-allow-cidrs). They never open loopback, unspecified,
	// link-local, multicast or cloud metadata addresses. Default none.
	AllowCIDRs []netip.Prefix
	// Timeout bounds a whole request. Default 10s.
	Timeout time.Duration
	// ConnectTimeout bounds the TCP connect and the TLS handshake, each: a
	// receiver that does not answer a connection holds a worker this long,
	// not the whole Timeout. Default 3s.
	ConnectTimeout time.Duration
}

// NewClient returns the guarded client: the address check runs on the
// resolved IP at connect time, so a DNS answer cannot rebind it.
func NewClient(opts Options) *http.Client {
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.ConnectTimeout == 0 {
		opts.ConnectTimeout = 3 * time.Second
	}
	p := newPolicy(opts)
	dialer := &net.Dialer{Timeout: opts.ConnectTimeout, Control: func(_, address string, _ syscall.RawConn) error {
		return p.checkAddress(address)
	}}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   opts.ConnectTimeout,
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

// ParseCIDRs parses a flag's values (each a CIDR such as 10.96.0.0/12 or
// fd00:10:96::/108; a comma-separated value is split) for Options.DenyCIDRs
// or AllowCIDRs. The error wraps ErrBadCIDR and names the flag (field) and
// the value: a value with host bits set (10.96.0.1/12) is refused too, as it
// is more likely a typo than the range meant.
func ParseCIDRs(field string, values []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range values {
		for _, s := range strings.Split(v, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("%s: %q: %w like 10.96.0.0/12 or fd00::/8 (%w)", field, s, ErrBadCIDR, err)
			}
			if p.Masked() != p {
				return nil, fmt.Errorf("%s: %q: %w: host bits set (did you mean %s?)", field, s, ErrBadCIDR, p.Masked())
			}
			out = append(out, canonical(p))
		}
	}
	return out, nil
}

// canonical writes an IPv4-mapped prefix (::ffff:10.0.0.0/104) as the IPv4
// one it means: the check compares unmapped addresses.
func canonical(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96).Masked()
	}
	return p.Masked()
}

// The rules an address is refused by, as the error names them.
const (
	ruleNotIP       = "not an IP address"
	ruleZone        = "an IPv6 address with a zone"
	ruleLoopback    = "loopback (127.0.0.0/8, ::1)"
	ruleUnspecified = `unspecified or "this network" (0.0.0.0/8, ::)`
	ruleLinkLocal   = "link-local (169.254.0.0/16, fe80::/10: the cloud metadata endpoint 169.254.169.254)"
	ruleMulticast   = "multicast (224.0.0.0/4, ff00::/8)"
	ruleMetadata    = "a cloud metadata address"
	ruleDenied      = "in --egress-deny-cidrs (the cluster's own ranges)"
	ruleShared      = "shared address space (100.64.0.0/10: carrier-grade NAT, Alibaba Cloud's metadata at 100.100.100.200); --egress-allow-cidrs lets a forge there through"
	ruleUniqueLocal = "unique-local IPv6 (fc00::/7: AWS's and GCP's IPv6 metadata); --egress-allow-cidrs lets a forge there through"
	ruleLocalNAT64  = "local-use NAT64 (64:ff9b:1::/48: where its IPv4 sits depends on the network); --egress-allow-cidrs lets it through"
)

// metadataAddrs are cloud metadata and platform endpoints outside link-local
// space; no allow-list opens them.
var metadataAddrs = []netip.Addr{
	netip.MustParseAddr("100.100.100.200"), // Alibaba Cloud
	netip.MustParseAddr("168.63.129.16"),   // Azure WireServer (a public address)
	netip.MustParseAddr("192.0.0.192"),     // Oracle Cloud Classic
	netip.MustParseAddr("fd00:ec2::254"),   // AWS instance metadata over IPv6
	netip.MustParseAddr("fd00:ec2::23"),    // AWS EKS Pod Identity Agent over IPv6
	netip.MustParseAddr("fd20:ce::254"),    // GCP metadata over IPv6
}

var (
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")
	// defaultRefused are private-use ranges refused unless AllowCIDRs holds
	// the address.
	defaultRefused = []struct {
		prefix netip.Prefix
		rule   string
	}{
		{netip.MustParsePrefix("100.64.0.0/10"), ruleShared},
		{netip.MustParsePrefix("fc00::/7"), ruleUniqueLocal},
		{netip.MustParsePrefix("64:ff9b:1::/48"), ruleLocalNAT64},
	}
	// embeddings are the IPv6 forms that carry an IPv4 address a translator
	// or tunnel on the path may deliver to; from is the byte offset of the
	// IPv4 in the address. IPv4-mapped (::ffff:0:0/96) is unmapped before.
	embeddings = []struct {
		prefix netip.Prefix
		from   int
		form   string
	}{
		{netip.MustParsePrefix("::/96"), 12, "IPv4-compatible ::/96"},
		{netip.MustParsePrefix("::ffff:0:0:0/96"), 12, "IPv4-translated ::ffff:0:0:0/96"},
		{netip.MustParsePrefix("64:ff9b::/96"), 12, "NAT64 64:ff9b::/96"},
		{netip.MustParsePrefix("2002::/16"), 2, "6to4 2002::/16"},
	}
)

// RefusedError is a refusal by the address check; it wraps ErrRefusedAddress.
type RefusedError struct {
	// Address is the IP address refused (an IPv4-mapped one unmapped), or
	// the dialled string when it is not an IP address.
	Address string
	// Via is the IPv4 address embedded in Address that was refused, when
	// the refusal is of it (Form names the embedding); zero otherwise.
	Via  netip.Addr
	Form string
	// Rule names the rule that refused the address.
	Rule string
}

func (e *RefusedError) Error() string {
	if e.Via.IsValid() {
		return fmt.Sprintf("%v: %s carries %s (%s), which is %s", ErrRefusedAddress, e.Address, e.Via, e.Form, e.Rule)
	}
	return fmt.Sprintf("%v: %s is %s", ErrRefusedAddress, e.Address, e.Rule)
}

// Unwrap returns ErrRefusedAddress.
func (e *RefusedError) Unwrap() error { return ErrRefusedAddress }

// policy is Options' address rules, decided once per client.
type policy struct {
	allowLoopback bool
	allow, deny   []netip.Prefix
}

func newPolicy(opts Options) *policy {
	p := &policy{allowLoopback: opts.AllowLoopback}
	for _, c := range opts.AllowCIDRs {
		p.allow = append(p.allow, canonical(c))
	}
	for _, c := range opts.DenyCIDRs {
		p.deny = append(p.deny, canonical(c))
	}
	return p
}

// checkAddress decides an "ip:port" the dialer is about to connect to: the
// address, and any IPv4 address embedded in it, must each pass rule.
func (p *policy) checkAddress(address string) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &RefusedError{Address: address, Rule: ruleNotIP}
	}
	ip := ap.Addr()
	if ip.Zone() != "" { // a zone makes netip.Prefix.Contains false: refuse, never guess
		return &RefusedError{Address: address, Rule: ruleZone}
	}
	ip = ip.Unmap()
	if r := p.rule(ip); r != "" {
		return &RefusedError{Address: ip.String(), Rule: r}
	}
	if v4, form, ok := embeddedIPv4(ip); ok {
		if r := p.rule(v4); r != "" {
			return &RefusedError{Address: ip.String(), Via: v4, Form: form, Rule: r}
		}
	}
	return nil
}

// rule returns the rule refusing ip (an unmapped address without zone), or
// "" when ip may be dialled. Loopback (unless allowed), unspecified,
// link-local, multicast and metadata addresses are always refused; then
// AllowCIDRs wins over DenyCIDRs and the default refusals.
func (p *policy) rule(ip netip.Addr) string {
	switch {
	case ip.IsLoopback() && !p.allowLoopback:
		return ruleLoopback
	case ip.IsUnspecified(), thisNetwork.Contains(ip):
		return ruleUnspecified
	case ip.IsLinkLocalUnicast():
		return ruleLinkLocal
	case ip.IsMulticast(), ip.IsLinkLocalMulticast(), ip.IsInterfaceLocalMulticast():
		return ruleMulticast
	}
	for _, m := range metadataAddrs {
		if ip == m {
			return ruleMetadata
		}
	}
	if containedIn(p.allow, ip) {
		return ""
	}
	if containedIn(p.deny, ip) {
		return ruleDenied
	}
	for _, d := range defaultRefused {
		if d.prefix.Contains(ip) {
			return d.rule
		}
	}
	return ""
}

// embeddedIPv4 returns the IPv4 address an IPv6 address carries in one of
// the embeddings, and the embedding's name.
func embeddedIPv4(ip netip.Addr) (netip.Addr, string, bool) {
	if !ip.Is6() {
		return netip.Addr{}, "", false
	}
	b := ip.As16()
	for _, e := range embeddings {
		if e.prefix.Contains(ip) {
			return netip.AddrFrom4([4]byte(b[e.from : e.from+4])), e.form, true
		}
	}
	return netip.Addr{}, "", false
}

func containedIn(prefixes []netip.Prefix, ip netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
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

package ui

import (
	"cmp"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// contentSecurityPolicy allows nothing but this server's own script, style
// and connections: no inline script or style, no frame, no form elsewhere.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// csrfField is the form field carrying the CSRF token of the POSTs.
const csrfField = "csrf"

// csrfToken is a random value per server process, put in the forms and
// required back. With the Origin/Sec-Fetch-Site check it stops another
// site from posting the form in the viewer's browser.
type csrfToken string

func newCSRFToken() (csrfToken, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return csrfToken(base64.RawURLEncoding.EncodeToString(b)), nil
}

func (t csrfToken) valid(got string) bool {
	return subtle.ConstantTimeCompare([]byte(t), []byte(got)) == 1
}

// secure wraps every response: security headers, the Host check against
// DNS rebinding (a page elsewhere resolving its own name to this machine
// must not read this one), and cross-origin protection for non-GET requests.
func secure(hosts *hostCheck, next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	protected := cop.Handler(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		if !hosts.ok(r.Host) {
			http.Error(w, refusedHostMessage(r.Host), http.StatusMisdirectedRequest)
			return
		}
		protected.ServeHTTP(w, r)
	})
}

// refusedHostMessage says why a Host was refused and what to do, quoting at
// most 100 bytes of it (a text/plain answer: nothing in it is markup).
func refusedHostMessage(host string) string {
	if len(host) > 100 {
		host = host[:100] + "..."
	}
	return fmt.Sprintf("keyless ui does not answer to Host %q: a name could be rebound to this machine by "+
		"another site's DNS. Open the address keyless ui printed (or an IP address of this machine), "+
		"or start keyless ui with --allowed-host NAME[:PORT] for a name you control.", host)
}

// ErrAllowedHost is returned by New for an Options.AllowedHosts entry that
// is not NAME[:PORT] or IP[:PORT].
var ErrAllowedHost = errors.New("ui: --allowed-host must be NAME[:PORT] or IP[:PORT] (IPv6 in brackets)")

// defaultPorts are what a Host header without a port stands for: the
// browser leaves out http's and https's default port (https: a proxy in
// front of keyless ui that passes the Host on).
var defaultPorts = []string{"80", "443"}

// ownAddrsRefresh is how often, at most, the machine's addresses are read
// again for a Host that is an IP literal not among them (a laptop changes
// networks; a flood of unknown addresses costs one read a second).
const ownAddrsRefresh = time.Second

// hostCheck decides which Host headers the dashboard answers to. A browser
// sends the name it resolved, so a web page whose DNS name an attacker
// rebinds to this machine reaches the port under the attacker's name:
// only names that cannot be rebound are accepted — IP literals of this
// machine and, where loopback is listened on, localhost — plus the names
// the viewer allowed with --allowed-host. Every comparison is exact on the
// port and case-insensitive on the name.
type hostCheck struct {
	// port is the port listened on.
	port string
	// exact holds canonical "host:port" values: the address listened on,
	// the loopback names when loopback is listened on, each allowed host.
	exact map[string]bool
	// own holds the machine's addresses when listening on every address
	// (0.0.0.0, ::); nil otherwise.
	own *ownAddrs
}

// newHostCheck is the Host check for a server listening on listenAddr
// (host:port) that also answers to allowed (entries validated by
// parseAllowedHost; an invalid one is skipped).
func newHostCheck(listenAddr string, allowed []string) *hostCheck {
	c := &hostCheck{exact: map[string]bool{}}
	host, port, err := net.SplitHostPort(listenAddr)
	if err != nil {
		return c
	}
	c.port = port
	ip, ipErr := netip.ParseAddr(host)
	if ipErr == nil {
		c.exact[canonicalIP(ip)+":"+port] = true
	}
	if IsLoopback(listenAddr) || (ipErr == nil && ip.IsUnspecified()) {
		for _, h := range []string{"localhost", "127.0.0.1", "[::1]"} {
			c.exact[h+":"+port] = true
		}
	}
	if ipErr == nil && ip.IsUnspecified() {
		c.own = &ownAddrs{list: net.InterfaceAddrs}
	}
	for _, a := range allowed {
		h, p, err := parseAllowedHost(a)
		if err != nil {
			continue
		}
		c.exact[h+":"+cmp.Or(p, port)] = true
	}
	return c
}

// ok reports whether a request with this Host header is answered.
func (c *hostCheck) ok(header string) bool {
	host, port, ip, valid := splitHost(header)
	if !valid {
		return false
	}
	ports := []string{port}
	if port == "" {
		ports = defaultPorts
	}
	for _, p := range ports {
		if c.exact[host+":"+p] {
			return true
		}
		if ip && p == c.port && c.own != nil && c.own.has(host) {
			return true
		}
	}
	return false
}

// splitHost splits a Host header into its canonical host (lower case; an
// IP address in netip's form, IPv6 in brackets, an IPv4-mapped IPv6 as
// IPv4, without zone) and port ("" when absent), and says whether the host
// is an IP literal. An empty header, a port that is not 1–65535, or an
// IPv6 address without brackets is not valid.
func splitHost(header string) (host, port string, ip, valid bool) {
	if header == "" {
		return "", "", false, false
	}
	hostPart, rest := header, ""
	if strings.HasPrefix(header, "[") {
		end := strings.IndexByte(header, ']')
		if end < 0 {
			return "", "", false, false
		}
		hostPart, rest = header[1:end], header[end+1:]
		if rest != "" && !strings.HasPrefix(rest, ":") {
			return "", "", false, false
		}
	} else if i := strings.IndexByte(header, ':'); i >= 0 {
		hostPart, rest = header[:i], header[i:]
	}
	if rest != "" {
		n, err := strconv.ParseUint(rest[1:], 10, 16)
		if err != nil || n == 0 {
			return "", "", false, false
		}
		port = strconv.FormatUint(n, 10)
	}
	bracketed := strings.HasPrefix(header, "[")
	if addr, err := netip.ParseAddr(hostPart); err == nil && addr.Is6() == bracketed {
		return canonicalIP(addr), port, true, true
	}
	if bracketed || hostPart == "" {
		return "", "", false, false
	}
	return strings.ToLower(hostPart), port, false, true
}

// canonicalIP writes ip as splitHost does: IPv4 (also when IPv4-mapped)
// dotted, IPv6 in brackets, no zone.
func canonicalIP(ip netip.Addr) string {
	ip = ip.WithZone("").Unmap()
	if ip.Is4() {
		return ip.String()
	}
	return "[" + ip.String() + "]"
}

// parseAllowedHost validates one --allowed-host entry, NAME[:PORT] or
// IP[:PORT] (IPv6 in brackets), and returns its canonical host and port
// ("" when not given: the port listened on).
func parseAllowedHost(s string) (host, port string, err error) {
	host, port, ip, valid := splitHost(s)
	if !valid || (!ip && len(validation.IsDNS1123Subdomain(host)) > 0) {
		return "", "", fmt.Errorf("%w: %q", ErrAllowedHost, s)
	}
	return host, port, nil
}

// ownAddrs are the machine's interface addresses, read for the first IP
// literal asked about and again, at most once per ownAddrsRefresh, for one
// not among them.
type ownAddrs struct {
	list func() ([]net.Addr, error)

	mu   sync.Mutex
	set  map[string]bool
	read time.Time
}

func (o *ownAddrs) has(host string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.set[host] {
		return true
	}
	if o.set != nil && time.Since(o.read) < ownAddrsRefresh {
		return false
	}
	o.read = time.Now()
	addrs, err := o.list()
	if err != nil {
		if o.set == nil {
			o.set = map[string]bool{}
		}
		return false
	}
	o.set = make(map[string]bool, len(addrs))
	for _, a := range addrs {
		var raw net.IP
		switch a := a.(type) {
		case *net.IPNet:
			raw = a.IP
		case *net.IPAddr:
			raw = a.IP
		}
		if ip, ok := netip.AddrFromSlice(raw); ok {
			o.set[canonicalIP(ip)] = true
		}
	}
	return o.set[host]
}

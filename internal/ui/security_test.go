package ui

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"k8s.io/client-go/rest"
)

// ownNonLoopbackIP is one of this machine's interface addresses that is not
// loopback, in Host form, or "" when it has none.
func ownNonLoopbackIP(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok || n.IP.IsLoopback() {
			continue
		}
		if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Zone() == "" && !ip.Unmap().IsLinkLocalUnicast() {
			return canonicalIP(ip)
		}
	}
	return ""
}

func TestHostCheck(t *testing.T) {
	own := ownNonLoopbackIP(t)
	allowed := []string{"dashboard.internal.example", "proxy.example:443", "192.0.2.77"}
	type row struct {
		bind, host string
		want       bool
	}
	rows := []row{
		// Loopback bind: the loopback names and addresses with the port.
		{"127.0.0.1:8390", "127.0.0.1:8390", true},
		{"127.0.0.1:8390", "localhost:8390", true},
		{"127.0.0.1:8390", "LocalHost:8390", true},
		{"127.0.0.1:8390", "[::1]:8390", true},
		{"127.0.0.1:8390", "[0:0:0:0:0:0:0:1]:8390", true},
		{"127.0.0.1:8390", "evil.example:8390", false},
		{"127.0.0.1:8390", "127.0.0.1:8391", false},
		{"127.0.0.1:8390", "localhost", false},
		{"127.0.0.1:8390", "localhost.:8390", false},
		{"[::1]:8390", "[::1]:8390", true},
		{"[::1]:8390", "localhost:8390", true},
		// Every address: a DNS name that could be rebound is refused.
		{"0.0.0.0:8390", "attacker.example:8390", false},
		{"0.0.0.0:8390", "myhost:8390", false},
		{"0.0.0.0:8390", "dashboard.internal.example.attacker.example:8390", false},
		{"0.0.0.0:8390", "localhost:8390", true},
		{"0.0.0.0:8390", "127.0.0.1:8390", true},
		{"0.0.0.0:8390", "[::1]:8390", true},
		{"0.0.0.0:8390", "203.0.113.7:8390", false}, // TEST-NET-3: not this machine's
		{"[::]:8390", "[::1]:8390", true},
		{"[::]:8390", "attacker.example:8390", false},
		// --allowed-host: the name (any case) with the port listened on, or its own.
		{"0.0.0.0:8390", "dashboard.internal.example:8390", true},
		{"0.0.0.0:8390", "Dashboard.Internal.Example:8390", true},
		{"0.0.0.0:8390", "dashboard.internal.example:9", false},
		{"0.0.0.0:8390", "dashboard.internal.example", false},
		{"0.0.0.0:8390", "proxy.example:443", true},
		{"0.0.0.0:8390", "proxy.example", true}, // a browser leaves :443 out
		{"0.0.0.0:8390", "proxy.example:8390", false},
		{"0.0.0.0:8390", "192.0.2.77:8390", true},
		{"0.0.0.0:8390", "[::ffff:192.0.2.77]:8390", true},
		// One specific address: that address only.
		{"192.0.2.10:8390", "192.0.2.10:8390", true},
		{"192.0.2.10:8390", "192.0.2.10:8391", false},
		{"192.0.2.10:8390", "localhost:8390", false},
		{"192.0.2.10:8390", "127.0.0.1:8390", false},
		{"192.0.2.10:8390", "attacker.example:8390", false},
		// A Host without a port stands for 80 (or 443).
		{"0.0.0.0:80", "127.0.0.1", true},
		{"0.0.0.0:80", "attacker.example", false},
		// Malformed or empty.
		{"0.0.0.0:8390", "", false},
		{"0.0.0.0:8390", ":8390", false},
		{"0.0.0.0:8390", "[::1:8390", false},
		{"0.0.0.0:8390", "::1:8390", false},
		{"0.0.0.0:8390", "[127.0.0.1]:8390", false},
		{"0.0.0.0:8390", "127.0.0.1:", false},
		{"0.0.0.0:8390", "127.0.0.1:0", false},
		{"0.0.0.0:8390", "127.0.0.1:99999", false},
		{"0.0.0.0:8390", "127.0.0.1:8390x", false},
		{"0.0.0.0:8390", "[::1]x:8390", false},
	}
	if own != "" {
		rows = append(rows,
			row{"0.0.0.0:8390", own + ":8390", true},
			row{"[::]:8390", own + ":8390", true},
			row{"0.0.0.0:8390", own + ":9", false},
			row{"127.0.0.1:8390", own + ":8390", false},
		)
	} else {
		t.Log("this machine has no non-loopback address: the own-address rows are left out")
	}
	for _, r := range rows {
		if got := newHostCheck(r.bind, allowed).ok(r.host); got != r.want {
			t.Errorf("bind %s: ok(%q) = %v, want %v", r.bind, r.host, got, r.want)
		}
	}
}

// TestHostCheckOwnAddressesChange: an address the machine gains after the
// start (a laptop on another network) is accepted once read again, at most
// once a second however many unknown addresses are asked about.
func TestHostCheckOwnAddressesChange(t *testing.T) {
	c := newHostCheck("0.0.0.0:8390", nil)
	reads := 0
	addrs := []net.Addr{&net.IPNet{IP: net.ParseIP("192.0.2.1"), Mask: net.CIDRMask(24, 32)}}
	c.own.list = func() ([]net.Addr, error) { reads++; return addrs, nil }
	if !c.ok("192.0.2.1:8390") || c.ok("198.51.100.1:8390") {
		t.Fatal("own address refused or a foreign one accepted")
	}
	addrs = append(addrs, &net.IPAddr{IP: net.ParseIP("198.51.100.1")})
	for range 100 {
		c.ok("203.0.113.9:8390")
	}
	if reads != 1 {
		t.Fatalf("read the addresses %d times within a second, want 1", reads)
	}
	c.own.read = c.own.read.Add(-2 * ownAddrsRefresh)
	if !c.ok("198.51.100.1:8390") || reads != 2 {
		t.Fatalf("a new own address is not accepted after a read again (%d reads)", reads)
	}
}

func TestAllowedHostValidated(t *testing.T) {
	for _, bad := range []string{"", "*.example", "http://dashboard.example", "dashboard.example/x",
		"dashboard.example:0", "dashboard.example:http", "::1", "under_score.example", "a b"} {
		_, err := New(Options{Config: &rest.Config{Host: "http://127.0.0.1:1"}, Namespaces: []string{"default"}, AllowedHosts: []string{bad}})
		if !errors.Is(err, ErrAllowedHost) {
			t.Errorf("--allowed-host %q: %v, want ErrAllowedHost", bad, err)
		}
	}
	for _, good := range []string{"dashboard.internal.example", "Dashboard.Example:8443", "192.0.2.7", "[2001:db8::7]:80"} {
		if _, _, err := parseAllowedHost(good); err != nil {
			t.Errorf("--allowed-host %q refused: %v", good, err)
		}
	}
}

// TestRebindingRefusedOverHTTP runs the dashboard's real server bound to
// every address and sends what a browser sends: a page whose name was
// rebound to this machine (Host attacker.example:PORT) is refused with 421
// naming --allowed-host; this machine's addresses and an allowed name are
// served.
func TestRebindingRefusedOverHTTP(t *testing.T) {
	srv, err := New(Options{Config: &rest.Config{Host: "http://127.0.0.1:1"}, Namespaces: []string{"default"},
		AllowedHosts: []string{"dashboard.internal.example"}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})

	get := func(host string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://127.0.0.1:"+port+"/static/ui.css", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, host := range []string{"attacker.example:" + port, "ATTACKER.example:" + port, "dashboard.internal.example:9", "203.0.113.7:" + port} {
		code, body := get(host)
		body = body[:min(len(body), 300)]
		if code != http.StatusMisdirectedRequest || !strings.Contains(body, "--allowed-host") || !strings.Contains(body, "rebound") {
			t.Errorf("Host %s: %d %q, want 421 naming --allowed-host and rebinding", host, code, body)
		}
	}
	served := []string{"dashboard.internal.example:" + port, "127.0.0.1:" + port, "localhost:" + port}
	if own := ownNonLoopbackIP(t); own != "" {
		served = append(served, own+":"+port)
	}
	for _, host := range served {
		if code, body := get(host); code != http.StatusOK || len(body) == 0 {
			t.Errorf("Host %s: %d, want the stylesheet served", host, code)
		}
	}
}

func TestSecureHeadersAndRebinding(t *testing.T) {
	h := secure(newHostCheck("127.0.0.1:8390", nil), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }))
	req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:8390/", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("own host: %d", rec.Code)
	}
	csp := rec.Header().Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "form-action 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("CSP allows inline code: %q", csp)
	}
	if rec.Header().Get("X-Frame-Options") != "DENY" || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("headers: %v", rec.Header())
	}

	rebound := httptest.NewRequest(http.MethodGet, "http://attacker.example:8390/", nil)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, rebound)
	if rec.Code != http.StatusMisdirectedRequest {
		t.Fatalf("a DNS-rebound Host was served: %d", rec.Code)
	}

	cross := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8390/apps/a/b/sync", strings.NewReader(url.Values{csrfField: {"x"}}.Encode()))
	cross.Header.Set("Sec-Fetch-Site", "cross-site")
	cross.Header.Set("Origin", "https://attacker.example")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, cross)
	if rec.Code != http.StatusForbidden {
		t.Fatalf("a cross-site POST was let through: %d", rec.Code)
	}
}

func TestCSRFToken(t *testing.T) {
	a, err := newCSRFToken()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := newCSRFToken()
	if a == b || len(a) < 40 {
		t.Fatalf("tokens %q %q", a, b)
	}
	if !a.valid(string(a)) || a.valid(string(b)) || a.valid("") {
		t.Fatal("valid() accepts what it should not, or refuses its own token")
	}
}

package ui

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestHostCheck(t *testing.T) {
	c := newHostCheck("127.0.0.1:8390")
	for host, want := range map[string]bool{
		"127.0.0.1:8390": true, "localhost:8390": true, "[::1]:8390": true,
		"evil.example:8390": false, "127.0.0.1:8391": false, "localhost": false,
	} {
		if got := c.ok(host); got != want {
			t.Errorf("loopback: ok(%q) = %v, want %v", host, got, want)
		}
	}
	unspecified := newHostCheck("0.0.0.0:8390")
	if !unspecified.ok("myhost:8390") || unspecified.ok("myhost:9") {
		t.Error("an unspecified bind accepts any name with its port, and only that port")
	}
}

func TestSecureHeadersAndRebinding(t *testing.T) {
	h := secure("127.0.0.1:8390", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }))
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

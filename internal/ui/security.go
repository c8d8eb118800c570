package ui

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/http"
	"strings"
)

// contentSecurityPolicy allows nothing but this server's own script, style
// and connections: no inline script or style, no frame, no form elsewhere.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// csrfField is the form field carrying the CSRF token of the one POST.
const csrfField = "csrf"

// csrfToken is a random value per server process, put in the Sync form and
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

// secure wraps every response: security headers, a Host check against
// DNS rebinding (a page elsewhere resolving its name to 127.0.0.1 must not
// read this one), and cross-origin protection for non-GET requests.
func secure(listenAddr string, next http.Handler) http.Handler {
	allowed := newHostCheck(listenAddr)
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
		if !allowed.ok(r.Host) {
			http.Error(w, "unexpected Host header: open the address keyless ui printed", http.StatusMisdirectedRequest)
			return
		}
		protected.ServeHTTP(w, r)
	})
}

// hostCheck holds the Host headers a browser sends for the listen address:
// the address itself and, on loopback, localhost and both loopback IPs with
// the same port; bound to every address, any name with the port (the
// viewer's own choice, after the loud warning at start-up).
type hostCheck struct {
	hosts   map[string]bool
	anyPort string
}

func newHostCheck(listenAddr string) hostCheck {
	c := hostCheck{hosts: map[string]bool{strings.ToLower(listenAddr): true}}
	host, port, err := net.SplitHostPort(listenAddr)
	if err != nil {
		return c
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		c.anyPort = port
	}
	if IsLoopback(listenAddr) {
		for _, h := range []string{"localhost", "127.0.0.1", "[::1]"} {
			c.hosts[h+":"+port] = true
		}
	}
	return c
}

func (c hostCheck) ok(host string) bool {
	if c.hosts[strings.ToLower(host)] {
		return true
	}
	_, port, err := net.SplitHostPort(host)
	return err == nil && c.anyPort != "" && port == c.anyPort
}

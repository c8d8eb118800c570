package egress

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestClientRefusesLoopbackAndLinkLocal(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer srv.Close()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
	if _, err := Do(t.Context(), NewClient(Options{}), req); !errors.Is(err, ErrRefusedAddress) {
		t.Fatalf("loopback without AllowLoopback: err = %v, want ErrRefusedAddress", err)
	}
	if _, err := Do(t.Context(), NewClient(Options{AllowLoopback: true}), req); err != nil {
		t.Fatalf("loopback allowed: %v", err)
	}
	for _, addr := range []string{"169.254.169.254:80", "[fe80::1]:443", "0.0.0.0:80", "[::1]:80", "[::ffff:127.0.0.1]:80", "224.0.0.1:80"} {
		if err := checkAddress(addr, false); !errors.Is(err, ErrRefusedAddress) {
			t.Errorf("%s: err = %v, want refused", addr, err)
		}
	}
	for _, addr := range []string{"10.0.0.8:443", "203.0.113.9:443"} {
		if err := checkAddress(addr, false); err != nil {
			t.Errorf("%s: %v", addr, err)
		}
	}
}

func TestClientNeverFollowsRedirects(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("the redirect was followed") }))
	defer target.Close()
	srv := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusFound))
	defer srv.Close()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL, nil)
	_, err := Do(t.Context(), NewClient(Options{AllowLoopback: true}), req)
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusFound {
		t.Fatalf("err = %v, want HTTP 302 reported", err)
	}
}

func TestCheckURL(t *testing.T) {
	for raw, ok := range map[string]bool{
		"https://hooks.slack.com/services/x": true, "http://h/x": false, "https://u:p@h/x": false, "ftp://h": false, "https:///x": false,
	} {
		if _, err := CheckURL("address", raw, false); (err == nil) != ok {
			t.Errorf("%s: err = %v, want ok=%v", raw, err, ok)
		}
	}
}

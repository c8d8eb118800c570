package devcli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyless-cd/keyless/internal/cli"
)

func TestDevIssuerMintsTokens(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	out := &syncBuffer{}
	go func() {
		done <- Run(ctx, []string{"dev-issuer", "up", "--addr", "127.0.0.1:0", "--ca-out", ca}, cli.IOStreams{In: strings.NewReader(""), Out: out, ErrOut: &syncBuffer{}})
	}()
	deadline := time.Now().Add(10 * time.Second)
	// Port 0: the issuer says which port it got.
	issuerLine := regexp.MustCompile(`issuer: https://(127\.0\.0\.1:[1-9][0-9]*)\n`)
	var addr string
	for {
		if m := issuerLine.FindStringSubmatch(out.String()); m != nil {
			addr = m[1]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dev issuer did not start: %q", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	code, tok, errOut := run(t.Context(), t, "dev-issuer", "token", "--issuer", "https://"+addr, "--ca", ca,
		"--gitlab", "myorg/myapp", "--project-id", "4242", "--ref", "main", "--audience", "k8s-prod")
	if code != 0 {
		t.Fatalf("token: %s", errOut)
	}
	parts := strings.Split(strings.TrimSpace(tok), ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	_ = json.Unmarshal(payload, &claims)
	if claims["sub"] != "project_path:myorg/myapp:ref_type:branch:ref:main" || claims["project_id"] != "4242" || claims["ref_protected"] != "true" || claims["iss"] != "https://"+addr {
		t.Fatalf("claims %v", claims)
	}
	if code, _, errOut := run(t.Context(), t, "dev-issuer", "up", "--addr", "0.0.0.0:0"); code == 0 || !strings.Contains(errOut, "loopback only") {
		t.Fatalf("non-loopback address: exit %d %q", code, errOut)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("dev-issuer up exited %d", code)
	}
}

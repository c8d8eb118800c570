package cli

import (
	"strings"
	"testing"
)

func TestAuthenticationConfigVersion(t *testing.T) {
	for v, want := range map[string]string{"1.37": "apiserver.config.k8s.io/v1", "v1.34": "apiserver.config.k8s.io/v1", "1.33": "apiserver.config.k8s.io/v1beta1", "1.30": "apiserver.config.k8s.io/v1beta1"} {
		if got, err := authenticationConfigVersion(v); err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", v, got, err, want)
		}
	}
	for _, v := range []string{"1.29", "2.0", "latest"} {
		if _, err := authenticationConfigVersion(v); err == nil {
			t.Errorf("%s accepted", v)
		}
	}
	code, out, _ := run(t.Context(), t, "oidc", "config", "--policy", "../../examples/oidc/keyless-oidc.yaml", "--kubernetes-version", "1.32")
	if code != 0 || !strings.HasPrefix(out, "apiVersion: apiserver.config.k8s.io/v1beta1\n") {
		t.Fatalf("exit %d: %q", code, out[:min(len(out), 80)])
	}
}

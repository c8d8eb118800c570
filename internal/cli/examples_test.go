package cli

import (
	"os"
	"testing"
)

// TestExamplesAreCurrent: every example renders, and the generated OIDC files
// are what `keyless oidc config|rbac` print for the sample policy today.
func TestExamplesAreCurrent(t *testing.T) {
	for _, dir := range []string{"../../examples/plain", "../../examples/kustomize/overlays/prod", "../../examples/helm/charts/hello", "../../examples/oidc/deploy/migrations"} {
		if code, _, errOut := run(t.Context(), t, "render", dir, "--root", "../../examples"); code != 0 {
			t.Errorf("render %s: %s", dir, errOut)
		}
	}
	for file, args := range map[string][]string{
		"../../examples/oidc/generated/authn.yaml": {"oidc", "config", "--policy", "../../examples/oidc/keyless-oidc.yaml"},
		"../../examples/oidc/generated/rbac.yaml":  {"oidc", "rbac", "--policy", "../../examples/oidc/keyless-oidc.yaml"},
	} {
		code, out, errOut := run(t.Context(), t, args...)
		if code != 0 {
			t.Fatalf("%v: %s", args, errOut)
		}
		want, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if out != string(want) {
			t.Errorf("%s is stale: regenerate it with keyless %v", file, args)
		}
	}
}

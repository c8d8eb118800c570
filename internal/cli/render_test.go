package cli

import (
	"strings"
	"testing"
)

// keyless render takes helm template's --kube-version and --api-versions.
func TestRenderCapabilitiesFlags(t *testing.T) {
	chart, root := "../render/testdata/helm/charts/caps", "../render/testdata/helm"
	code, out, errOut := run(t.Context(), t, "render", chart, "--root", root, "-n", "shop")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Contains(out, "kind: ServiceMonitor") {
		t.Fatalf("a ServiceMonitor rendered without its API version:\n%s", out)
	}
	code, out, errOut = run(t.Context(), t, "render", chart, "--root", root, "-n", "shop",
		"--kube-version", "v1.30.2", "-a", "monitoring.coreos.com/v1/ServiceMonitor,example.com/v1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"kind: ServiceMonitor", "kubeVersion: v1.30.2"} {
		if !strings.Contains(out, want) {
			t.Errorf("render output lacks %q:\n%s", want, out)
		}
	}
}

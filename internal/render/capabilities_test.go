package render

import (
	"strings"
	"testing"

	"github.com/keyless-cd/keyless/internal/version"
)

// A chart sees the Kubernetes version and the API versions it is given, as
// with helm template --kube-version and --api-versions; without them, the
// version keyless is built against and no third-party API.
func TestRenderHelmCapabilities(t *testing.T) {
	kubeV := "v" + strings.TrimPrefix(version.KubernetesVersion(), "v")
	cases := map[string]struct {
		helm        HelmOptions
		kube        string
		monitor     bool
		wantErrText string
	}{
		"defaults":                {kube: kubeV},
		"kube version given":      {helm: HelmOptions{KubeVersion: "1.29.3"}, kube: "v1.29.3"},
		"api version of the kind": {helm: HelmOptions{APIVersions: []string{"monitoring.coreos.com/v1/ServiceMonitor"}}, kube: kubeV, monitor: true},
		"group version only":      {helm: HelmOptions{APIVersions: []string{"monitoring.coreos.com/v1"}}, kube: kubeV},
		"bad kube version":        {helm: HelmOptions{KubeVersion: "one.two"}, wantErrText: `kube version "one.two"`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			res, err := Render(t.Context(), Options{Root: "testdata/helm", Path: "charts/caps", Namespace: "shop", Helm: tc.helm})
			if tc.wantErrText != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErrText) {
					t.Fatalf("err = %v, want %q", err, tc.wantErrText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cm := res.Objects[0]
			if got := cm.Object["data"].(map[string]any)["kubeVersion"]; got != tc.kube {
				t.Errorf(".Capabilities.KubeVersion = %v, want %s", got, tc.kube)
			}
			if got := cm.Object["data"].(map[string]any)["policyV1"]; got != "true" {
				t.Errorf("a built-in API version is missing from .Capabilities.APIVersions: policyV1 = %v", got)
			}
			if got := len(res.Objects) == 2; got != tc.monitor {
				t.Errorf("ServiceMonitor rendered = %v, want %v (objects %d)", got, tc.monitor, len(res.Objects))
			}
		})
	}
}

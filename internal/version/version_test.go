package version

import (
	"regexp"
	"testing"
)

func TestPinsAreSemver(t *testing.T) {
	semver := regexp.MustCompile(`^v\d+\.\d+\.\d+$`)
	pins := Pins()
	for _, k := range []string{"KUBERNETES_VERSION", "ETCD_VERSION", "KWOK_VERSION"} {
		if !semver.MatchString(pins[k]) {
			t.Errorf("versions.env: %s = %q, want vX.Y.Z", k, pins[k])
		}
	}
	if KubernetesVersion() != pins["KUBERNETES_VERSION"] {
		t.Errorf("KubernetesVersion() = %q, want %q", KubernetesVersion(), pins["KUBERNETES_VERSION"])
	}
}

func TestVersionFallback(t *testing.T) {
	old := version
	t.Cleanup(func() { version = old })
	version = "v9.9.9"
	if got := Version(); got != "v9.9.9" {
		t.Errorf("Version() = %q, want ldflags value", got)
	}
	version = ""
	if got := Version(); got == "" {
		t.Error("Version() is empty without ldflags")
	}
}

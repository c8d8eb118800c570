// Package version reports the keyless version and the pinned versions of the
// local control plane it is tested against.
package version

import (
	"bufio"
	_ "embed"
	"runtime/debug"
	"strings"
)

// version is set at build time with
// -ldflags "-X github.com/keyless-cd/keyless/internal/version.version=v1.2.3".
var version = ""

//go:embed versions.env
var pins string

// Version returns the keyless version: the ldflags value when set, else the
// module version from the build info, else "devel".
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// Pins returns the versions pinned in versions.env (KUBERNETES_VERSION,
// ETCD_VERSION, KWOK_VERSION, ...).
func Pins() map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(pins))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			out[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return out
}

// KubernetesVersion is the Kubernetes version keyless is built and tested
// against (the local control plane's kube-apiserver).
func KubernetesVersion() string { return Pins()["KUBERNETES_VERSION"] }

package render

import (
	"fmt"
	"os"
	"strings"

	"sigs.k8s.io/kustomize/api/types"

	"github.com/keyless-cd/keyless/internal/confine"
)

// ChartPull is a kustomize helmCharts entry with a repo whose chart is not
// vendored where kustomize looks for it: `kustomize build --enable-helm`
// would run `helm pull --repo Repo --version Version Name` (`helm pull
// Repo/Name` for an oci:// Repo). The controller pulls it instead, before
// the render, and passes its folder in HelmOptions.PulledCharts under
// PulledChartKey(Repo, Name, Version).
type ChartPull struct {
	// Repo is the entry's repo, as written: https://… (http://…) or oci://….
	Repo string
	// Name is the chart's name.
	Name string
	// Version is the entry's version as written; "" is the latest.
	Version string
	// Where is the kustomization file that lists it first (relative to
	// the root, forward slashes).
	Where string
}

// Key is the chart's key in HelmOptions.PulledCharts.
func (p ChartPull) Key() string { return PulledChartKey(p.Repo, p.Name, p.Version) }

// PulledChartKey is the key of HelmOptions.PulledCharts for a helmCharts
// entry: its repo, name and version exactly as the kustomization writes
// them, joined by spaces (none of them holds one).
func PulledChartKey(repo, name, version string) string {
	return repo + " " + name + " " + version
}

// KustomizeChartPulls lists the charts the kustomization at path inside root
// (and the kustomizations it includes: resources, bases and components that
// are folders, walked as a render inflates them) would pull: helmCharts
// entries with a repo that are not vendored under their chartHome, each
// once, in the order a render meets them. It reads only kustomization files,
// inside root, bounded by lim.MaxFileBytes, the inclusion depth and the
// number of helmCharts entries (a *LimitError past them); it never touches
// the network. A folder that is not a kustomization lists none. An entry the
// render would refuse anyway (no name) is left to the render to report.
func KustomizeChartPulls(root, path string, lim Limits) ([]ChartPull, error) {
	if lim.MaxFileBytes == 0 {
		lim.MaxFileBytes = DefaultLimits.MaxFileBytes
	}
	if path == "" {
		path = "."
	}
	root, err := confine.Root(root)
	if err != nil {
		return nil, err
	}
	dir, err := joinNoted(root, root, path)
	if err != nil {
		return nil, fmt.Errorf("path %w", err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() || Detect(dir) != KindKustomize {
		return nil, nil //nolint:nilerr // not a kustomization: the render reports a bad path
	}
	in := &helmInflation{root: root, opts: Options{Limits: lim}, seen: map[string]bool{}, nsOf: map[string]string{}}
	var pulls []ChartPull
	listed := map[string]bool{}
	in.onCharts = func(kdir, kfile string, _ []byte, k *types.Kustomization, _ string) error {
		rel := confine.Rel(root, kfile)
		var globals types.HelmGlobals
		if k.HelmGlobals != nil {
			globals = *k.HelmGlobals
		}
		for _, h := range k.HelmCharts {
			in.charts++
			if in.charts > maxHelmCharts {
				return &LimitError{Limit: "helmCharts", Where: rel, Detail: fmt.Sprintf("more than %d helmCharts entries in one build", maxHelmCharts)}
			}
			if h.Repo == "" || h.Name == "" || strings.HasPrefix(h.Name, "-") {
				continue
			}
			dir, _, err := in.vendoredChart(kdir, fmt.Sprintf("%s: helmCharts %q", rel, h.Name), globals, h)
			if err != nil {
				return err
			}
			p := ChartPull{Repo: h.Repo, Name: h.Name, Version: h.Version, Where: rel}
			if dir != "" || listed[p.Key()] {
				continue
			}
			listed[p.Key()] = true
			pulls = append(pulls, p)
		}
		return nil
	}
	if err := in.visit(dir, "", 0); err != nil {
		return nil, err
	}
	return pulls, nil
}

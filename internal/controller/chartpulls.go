package controller

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/keyless-cd/keyless/internal/confine"
	"github.com/keyless-cd/keyless/internal/helmrepo"
	"github.com/keyless-cd/keyless/internal/render"
)

// maxChartPulls bounds the charts one kustomize render pulls (distinct
// repo, name and version), as helmrepo.Limits.MaxDependencies' default
// bounds a chart's dependencies.
const maxChartPulls = 100

// kustomizeCharts pulls, for a kustomization at path in the checkout dir,
// the helmCharts charts with a repo that are not vendored where kustomize
// looks for them (render.KustomizeChartPulls), as `kustomize build
// --enable-helm` would `helm pull` them: each resolved (an exact version, a
// range, or the latest when the entry has none) and fetched digest-verified
// through the controller's Helm fetcher (https:// Helm repositories and
// oci:// registries; plain http only with --allow-insecure-http), unpacked
// read-only in the chart cache. It returns render.HelmOptions.PulledCharts
// for the render child, which never touches the network. A folder that is
// not a kustomization pulls nothing. creds returns the credential for a
// repository URL (nil, or a nil answer: anonymous).
func (r *ApplicationReconciler) kustomizeCharts(ctx context.Context, dir, path string, lim render.Limits, creds func(repoURL string) *helmrepo.Credentials) (map[string]string, error) {
	if r.charts == nil {
		return nil, nil
	}
	kdir, err := confine.Join(dir, dir, path)
	if err != nil || render.Detect(kdir) != render.KindKustomize {
		return nil, nil //nolint:nilerr // the render reports a bad path
	}
	pulls, err := render.KustomizeChartPulls(dir, path, lim)
	if err != nil {
		return nil, fmt.Errorf("kustomize helmCharts: %w", err)
	}
	if len(pulls) == 0 {
		return nil, nil
	}
	if len(pulls) > maxChartPulls {
		return nil, &helmrepo.LimitError{Limit: "helmCharts pulls", Where: pulls[maxChartPulls].Where, Detail: fmt.Sprintf("more than %d charts to pull", maxChartPulls)}
	}
	out := make(map[string]string, len(pulls))
	pinned := make([]string, 0, len(pulls))
	for _, p := range pulls {
		var c *helmrepo.Credentials
		if creds != nil {
			c = creds(p.Repo)
		}
		folder, res, err := r.pullChart(ctx, p, c)
		if err != nil {
			return nil, fmt.Errorf("%s: helmCharts %q: %w", p.Where, p.Name, err)
		}
		out[p.Key()] = folder
		pinned = append(pinned, res.String()+" "+res.Digest)
	}
	log.FromContext(ctx).Info("kustomize helmCharts pulled", "charts", strings.Join(pinned, ", "))
	return out, nil
}

// pullChart resolves, fetches and unpacks one chart and returns its folder.
func (r *ApplicationReconciler) pullChart(ctx context.Context, p render.ChartPull, creds *helmrepo.Credentials) (string, helmrepo.Resolved, error) {
	repoURL := p.Repo
	if strings.HasPrefix(repoURL, "oci://") {
		// kustomize pulls <repo>/<name>, without the repo's trailing slash.
		repoURL = strings.TrimSuffix(repoURL, "/")
	}
	res, err := r.charts.Resolve(ctx, helmrepo.ChartRef{RepoURL: repoURL, Chart: p.Name, Version: p.Version}, creds)
	if err != nil {
		return "", res, err
	}
	archive, err := r.charts.Fetch(ctx, res, creds)
	if err != nil {
		return "", res, err
	}
	root, name, err := expandChart(filepath.Join(r.chartCacheDir, "expanded"), archive, res.Digest)
	if err != nil {
		return "", res, fmt.Errorf("chart %s %s: %w", res.Chart, res.Version, err)
	}
	if name != p.Name {
		// kustomize looks for the pulled chart at <name>-<version>/<name>.
		return "", res, fmt.Errorf("chart %s %s unpacks to folder %q, not %q: %w", res.Chart, res.Version, name, p.Name, helmrepo.ErrUnsupported)
	}
	return filepath.Join(root, name), res, nil
}

package render

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"helm.sh/helm/v4/pkg/action"
	helmchart "helm.sh/helm/v4/pkg/chart"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	release "helm.sh/helm/v4/pkg/release/v1"
	"sigs.k8s.io/yaml"

	"github.com/keyless-cd/keyless/internal/version"
)

// renderHelm renders the chart in dir like `helm template`: client-only, no
// release stored, test hooks skipped, other hooks rendered as ordinary objects,
// CRDs included (and then refused by the engine's namespace guard), chart
// dependencies taken from the vendored charts/ folder.
func renderHelm(ctx context.Context, root, dir string, opts Options) ([]sourced, error) {
	rel := relToRoot(root, dir)
	if err := checkChartFiles(root, dir, opts.Limits); err != nil {
		return nil, err
	}
	chrt, err := loader.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("loading chart %s: %w", rel, err)
	}
	if deps := chrt.Metadata.Dependencies; len(deps) > 0 {
		acc, err := helmchart.NewAccessor(chrt)
		if err != nil {
			return nil, fmt.Errorf("chart %s: %w", rel, err)
		}
		if err := action.CheckDependencies(chrt, acc.MetaDependencies()); err != nil {
			return nil, fmt.Errorf("chart %s: %w; vendor dependencies into %s/charts with `helm dependency build` and commit them", rel, err, rel)
		}
	}
	vals := map[string]any{}
	for _, vf := range opts.Helm.ValueFiles {
		path, err := confinedPath(root, dir, vf)
		if err != nil {
			return nil, fmt.Errorf("chart %s: values file %w", rel, err)
		}
		data, err := readLimited(path, relToRoot(root, path), opts.Limits.MaxFileBytes)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := yaml.Unmarshal(data, &m); err != nil {
			return nil, decodeError(relToRoot(root, path), document{line: 1, data: data}, err)
		}
		vals = mergeMaps(vals, m)
	}
	vals = mergeMaps(vals, opts.Helm.Values)

	cfg := action.NewConfiguration(action.ConfigurationSetLogger(slog.DiscardHandler))
	inst := action.NewInstall(cfg)
	inst.DryRunStrategy = action.DryRunClient
	inst.Replace = true
	inst.IncludeCRDs = true
	inst.Namespace = opts.Namespace
	inst.ReleaseName = opts.Helm.ReleaseName
	if inst.ReleaseName == "" {
		inst.ReleaseName = chrt.Name()
	}
	if kv, err := common.ParseKubeVersion(version.KubernetesVersion()); err == nil {
		inst.KubeVersion = kv
	}
	out, err := inst.RunWithContext(ctx, chrt, vals)
	if err != nil {
		return nil, fmt.Errorf("rendering chart %s: %w", rel, err)
	}
	r, ok := out.(*release.Release)
	if !ok {
		return nil, fmt.Errorf("rendering chart %s: unexpected release type %T", rel, out)
	}
	var manifest bytes.Buffer
	manifest.WriteString(r.Manifest)
	for _, h := range r.Hooks {
		if isTestHook(h) {
			continue
		}
		fmt.Fprintf(&manifest, "\n---\n# Source: %s\n%s\n", h.Path, h.Manifest)
	}
	return decodeHelmManifest(rel, manifest.Bytes())
}

func isTestHook(h *release.Hook) bool {
	for _, e := range h.Events {
		if e == release.HookTest {
			return true
		}
	}
	return false
}

// decodeHelmManifest decodes Helm's rendered stream, naming each object's
// template ("# Source: chart/templates/x.yaml") as its source.
func decodeHelmManifest(chartRel string, manifest []byte) ([]sourced, error) {
	var out []sourced
	for _, doc := range splitDocuments(manifest) {
		name := "chart " + chartRel
		for _, line := range strings.Split(string(doc.data), "\n") {
			if src, ok := strings.CutPrefix(strings.TrimSpace(line), "# Source: "); ok {
				name = "template " + src
				break
			}
		}
		objs, err := decodeObjects(name, doc.data)
		if err != nil {
			return nil, err
		}
		for i := range objs {
			objs[i].source = name
		}
		out = append(out, objs...)
	}
	return out, nil
}

// checkChartFiles refuses charts with files over the size limit or symlinks
// that leave root (Helm's loader follows symlinks).
func checkChartFiles(root, dir string, lim Limits) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("reading chart %s: %w", relToRoot(root, path), err)
		}
		if d.Type()&fs.ModeSymlink != 0 {
			resolved, err := confinedPath(root, filepath.Dir(path), d.Name())
			if err != nil {
				return fmt.Errorf("chart file %s: %w", relToRoot(root, path), err)
			}
			if fi, err := os.Stat(resolved); err == nil && fi.IsDir() {
				return checkChartFiles(root, resolved, lim)
			}
			path = resolved
		} else if d.IsDir() {
			return nil
		}
		fi, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("chart file %s: %w", relToRoot(root, path), err)
		}
		if fi.Size() > lim.MaxFileBytes {
			return fmt.Errorf("%s: file is %d bytes, more than the limit of %d bytes", relToRoot(root, path), fi.Size(), lim.MaxFileBytes)
		}
		return nil
	})
}

// mergeMaps merges b into a (b wins), recursing into nested maps, like
// Helm's handling of several --values files.
func mergeMaps(a, b map[string]any) map[string]any {
	out := make(map[string]any, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if bm, ok := v.(map[string]any); ok {
			if am, ok := out[k].(map[string]any); ok {
				out[k] = mergeMaps(am, bm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

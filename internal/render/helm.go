package render

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/keyless-cd/keyless/internal/confine"
	"github.com/keyless-cd/keyless/internal/readset"
	"github.com/keyless-cd/keyless/internal/sopsfile"

	"helm.sh/helm/v4/pkg/action"
	helmchart "helm.sh/helm/v4/pkg/chart"
	"helm.sh/helm/v4/pkg/chart/common"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	release "helm.sh/helm/v4/pkg/release/v1"
	"sigs.k8s.io/yaml"

	"github.com/keyless-cd/keyless/internal/version"
)

// renderHelm renders the chart in dir like `helm template`: client-only, no
// release stored, test hooks skipped, other hooks rendered as ordinary objects,
// CRDs included (and then refused by the engine's namespace guard), chart
// dependencies taken from the vendored charts/ folder.
func renderHelm(ctx context.Context, root, dir string, opts Options, dec *decrypter) ([]sourced, error) {
	rel := confine.Rel(root, dir)
	chrt, err := loadChart(root, dir, opts)
	if err != nil {
		return nil, err
	}
	vals := map[string]any{}
	for _, vf := range opts.Helm.ValueFiles {
		m, err := readChartValueFile(root, dir, vf, "chart "+rel, opts, dec)
		if err != nil {
			return nil, err
		}
		vals = mergeMaps(vals, m)
	}
	vals = mergeMaps(vals, opts.Helm.Values)
	manifest, err := helmTemplate(ctx, rel, chrt, vals, helmTemplateOptions{
		ReleaseName: opts.Helm.ReleaseName, Namespace: opts.Namespace,
		KubeVersion: opts.Helm.KubeVersion, APIVersions: opts.Helm.APIVersions,
		IncludeCRDs: true, SkipTests: true,
	}, opts.Limits)
	if err != nil {
		return nil, err
	}
	return decodeHelmManifest(rel, manifest, opts.Limits.MaxObjects)
}

// loadChart loads the chart in dir after checking its files (size, symlinks),
// that its own values are not SOPS-encrypted, that its dependencies are
// vendored or added (addDependencies) and that its schemas load nothing
// from outside.
func loadChart(root, dir string, opts Options) (*chartv2.Chart, error) {
	rel := confine.Rel(root, dir)
	if err := checkChartFiles(root, dir, opts.Limits); err != nil {
		return nil, err
	}
	note(dir, readset.Tree) // the loader reads every file of the chart
	chrt, err := loader.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("loading chart %s: %w", rel, err)
	}
	if err := checkChartValuesPlain(rel, chrt); err != nil {
		return nil, err
	}
	if err := addDependencies(root, dir, chrt, opts); err != nil {
		return nil, err
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
	if err := checkSchemasOffline(rel, chrt, 0); err != nil {
		return nil, err
	}
	return chrt, nil
}

// readChartValueFile reads one of helm.valueFiles: relative to the chart,
// or $ref/path inside the checkout of the spec.sources entry with that ref
// (Argo CD's multi-source values), confined to that checkout.
func readChartValueFile(root, dir, vf, where string, opts Options, dec *decrypter) (map[string]any, error) {
	ref, ok := strings.CutPrefix(vf, "$")
	if !ok {
		return readValueFile(root, dir, vf, where, opts.Limits, dec)
	}
	name, rest, _ := strings.Cut(ref, "/")
	refRoot, ok := opts.RefRoots[name]
	if !ok || refRoot == "" {
		return nil, fmt.Errorf("%s: values file %q names $%s, which no spec.sources entry has as its ref", where, vf, name)
	}
	m, err := readValueFile(refRoot, refRoot, rest, where+" ($"+name+")", opts.Limits, dec)
	if err != nil {
		return nil, fmt.Errorf("$%s: %w", name, err)
	}
	return m, nil
}

// readValueFile reads a Helm values file (vf relative to base, inside root),
// bounded and SOPS-decrypted in memory; where names what listed it.
func readValueFile(root, base, vf, where string, lim Limits, dec *decrypter) (map[string]any, error) {
	data, name, err := readValueData(root, base, vf, where, lim, dec)
	if err != nil {
		return nil, err
	}
	return parseValues(name, data)
}

// readValueData is readValueFile's content, with its name relative to root.
func readValueData(root, base, vf, where string, lim Limits, dec *decrypter) ([]byte, string, error) {
	path, err := joinNoted(root, base, vf)
	if err != nil {
		return nil, "", fmt.Errorf("%s: values file %w", where, err)
	}
	name := confine.Rel(root, path)
	data, err := readLimited(path, name, lim.MaxFileBytes)
	if err != nil {
		return nil, "", err
	}
	if data, err = dec.read(name, data); err != nil {
		return nil, "", err
	}
	return data, name, nil
}

// parseValues decodes Helm values; name is the file, for errors.
func parseValues(name string, data []byte) (map[string]any, error) {
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, decodeError(name, document{line: 1, data: data}, err)
	}
	return m, nil
}

// helmTemplateOptions are the `helm template` flags keyless renders with.
type helmTemplateOptions struct {
	// ReleaseName is .Release.Name. Default: the chart's name.
	ReleaseName string
	// Namespace is .Release.Namespace.
	Namespace string
	// KubeVersion and APIVersions: see HelmOptions.
	KubeVersion string
	APIVersions []string
	// IncludeCRDs renders the chart's crds/ folder (--include-crds).
	IncludeCRDs bool
	// SkipTests drops test hooks (--skip-tests); NoHooks drops every hook
	// (--no-hooks). Other hooks are rendered as ordinary objects.
	SkipTests, NoHooks bool
}

// helmTemplate renders a loaded chart like `helm template`: client-only, no
// release stored. It returns the manifest stream, hooks after the
// manifests, each document with its "# Source:" line.
func helmTemplate(ctx context.Context, rel string, chrt *chartv2.Chart, vals map[string]any, t helmTemplateOptions, lim Limits) ([]byte, error) {
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(slog.DiscardHandler))
	cfg.CustomTemplateFuncs = template.FuncMap{"repeat": cappedRepeat(lim.MaxFileBytes)}
	inst := action.NewInstall(cfg)
	inst.DryRunStrategy = action.DryRunClient
	inst.Replace = true
	inst.IncludeCRDs = t.IncludeCRDs
	inst.Namespace = t.Namespace
	inst.ReleaseName = t.ReleaseName
	if inst.ReleaseName == "" {
		inst.ReleaseName = chrt.Name()
	}
	var err error
	if inst.KubeVersion, err = helmKubeVersion(t.KubeVersion); err != nil {
		return nil, fmt.Errorf("chart %s: %w", rel, err)
	}
	inst.APIVersions = common.VersionSet(t.APIVersions)
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
		if t.NoHooks || (t.SkipTests && isTestHook(h)) {
			continue
		}
		fmt.Fprintf(&manifest, "\n---\n# Source: %s\n%s\n", h.Path, h.Manifest)
	}
	return manifest.Bytes(), nil
}

// helmKubeVersion parses .Capabilities.KubeVersion; "" is the Kubernetes
// version keyless is built against.
func helmKubeVersion(v string) (*common.KubeVersion, error) {
	if v == "" {
		v = version.KubernetesVersion()
	}
	kv, err := common.ParseKubeVersion(v)
	if err != nil {
		return nil, fmt.Errorf("kube version %q: %w", v, err)
	}
	return kv, nil
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
func decodeHelmManifest(chartRel string, manifest []byte, maxObjects int) ([]sourced, error) {
	var out []sourced
	for _, doc := range splitDocuments(manifest) {
		name := "chart " + chartRel
		for _, line := range strings.Split(string(doc.data), "\n") {
			if src, ok := strings.CutPrefix(strings.TrimSpace(line), "# Source: "); ok {
				name = "template " + src
				break
			}
		}
		objs, err := decodeObjects(name, doc.data, maxObjects-len(out))
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

// checkChartFiles refuses charts with files over the size limit, symlinks
// that leave root, and symlink cycles (Helm's loader follows symlinks, so a
// committed templates/loop -> .. would recurse until the stack overflows).
func checkChartFiles(root, dir string, lim Limits) error {
	return walkChart(root, dir, lim, []string{dir})
}

// walkChart walks dir; ancestors are the real folders the walk descended
// through to reach it, so a link back into one of them is a cycle.
func walkChart(root, dir string, lim Limits, ancestors []string) error {
	if len(ancestors) > maxChartLinkDepth {
		return &LimitError{Limit: "chart symlink depth", Where: confine.Rel(root, dir), Detail: fmt.Sprintf("symlinks nested more than %d deep", maxChartLinkDepth)}
	}
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("reading chart %s: %w", confine.Rel(root, path), err)
		}
		if d.Type()&fs.ModeSymlink != 0 {
			resolved, err := joinNoted(root, filepath.Dir(path), d.Name())
			if err != nil {
				return fmt.Errorf("chart file %s: %w", confine.Rel(root, path), err)
			}
			if fi, err := statNoted(resolved); err == nil && fi.IsDir() {
				here, _ := filepath.EvalSymlinks(filepath.Dir(path))
				for _, a := range append(ancestors, here) {
					if confine.Within(resolved, a) {
						return fmt.Errorf("chart file %s is a symlink to %s, a folder that contains it: %w", confine.Rel(root, path), confine.Rel(root, resolved), ErrSymlinkCycle)
					}
				}
				return walkChart(root, resolved, lim, append(ancestors, here))
			}
			path = resolved
		} else if d.IsDir() {
			return nil
		}
		fi, err := statNoted(path)
		if err != nil {
			return fmt.Errorf("chart file %s: %w", confine.Rel(root, path), err)
		}
		if fi.Size() > lim.MaxFileBytes {
			return fileTooLarge(confine.Rel(root, path), fi.Size(), lim.MaxFileBytes)
		}
		return nil
	})
}

// checkSchemasOffline refuses a values.schema.json (of the chart or any
// subchart, vendored folder or tarball) with a reference Helm would load
// from a file or URL, naming the schema and the reference.
func checkSchemasOffline(rel string, c *chartv2.Chart, depth int) error {
	if depth > maxScanDepth {
		return fmt.Errorf("chart %s: subcharts nested deeper than %d", rel, maxScanDepth)
	}
	if len(c.Schema) > 0 {
		name := rel + "/values.schema.json"
		if !c.IsRoot() {
			name = rel + " (subchart " + c.ChartFullPath() + ")/values.schema.json"
		}
		refs, err := SchemaRemoteRefs(c.Schema)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if len(refs) > 0 {
			return fmt.Errorf("%s: reference %q leaves the chart (Helm would load it from a file or URL); use a local \"#/...\" reference: %w", name, refs[0], ErrRemoteReference)
		}
	}
	for _, d := range c.Dependencies() {
		if err := checkSchemasOffline(rel, d, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// cappedRepeat is sprig's repeat with a bound on the result's size, so a
// template cannot ask for gigabytes with {{ repeat 400000000 "x" }}.
func cappedRepeat(limit int64) func(int, string) (string, error) {
	return func(count int, s string) (string, error) {
		if count < 0 {
			count = 0
		}
		if len(s) > 0 && int64(count) > limit/int64(len(s)) {
			return "", &LimitError{Limit: "--max-file-size", Where: "repeat", Detail: fmt.Sprintf("repeat %d of a %d-byte string is more than %d bytes", count, len(s), limit)}
		}
		return strings.Repeat(s, count), nil
	}
}

// maxChartLinkDepth bounds symlinked folders inside symlinked folders.
const maxChartLinkDepth = 16

// ErrSymlinkCycle is returned (wrapped) for a symlink to a folder that
// contains it.
var ErrSymlinkCycle = errors.New("symlink cycle")

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

// checkChartValuesPlain refuses a chart whose own values.yaml is
// SOPS-encrypted: Helm would template the ciphertext. Encrypted values
// belong in a file listed in helm.valueFiles, which is decrypted.
func checkChartValuesPlain(rel string, chrt *chartv2.Chart) error {
	for _, f := range chrt.Raw {
		if f.Name == "values.yaml" && sopsfile.IsEncrypted(f.Name, f.Data) {
			return &decryptionError{err: fmt.Errorf("%s/values.yaml is SOPS-encrypted; a chart's own values are not decrypted: move the secret values to a file listed in helm.valueFiles (--helm-values): %w", rel, sopsfile.ErrEncrypted)}
		}
	}
	return nil
}

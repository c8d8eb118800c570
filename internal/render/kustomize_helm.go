package render

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig/v3"
	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/kio"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
	"sigs.k8s.io/kustomize/kyaml/yaml/merge2"
	"sigs.k8s.io/yaml"

	"github.com/keyless-cd/keyless/internal/confine"
)

// kustomize's helmCharts are inflated here, in-process, with the Helm
// rendering of helm.go, instead of kustomize's HelmChartInflationGenerator
// (which execs a helm binary and pulls charts). Before krusty runs, every
// kustomization of the build that lists helmCharts is read; its charts are
// rendered as `kustomize build --enable-helm` would have helm render them;
// and kustomize is shown, through helmChartsFS, a rewritten kustomization:
// helmCharts and helmGlobals gone, and a virtual component (inflatedDir)
// first in its components, holding the inflated objects. Components are
// accumulated right after the generators and before the transformers, which
// is where the generator's output goes (after resources, configMapGenerator
// and secretGenerator; only `generators:` entries, which run between the
// two, end up before the charts instead of after them). The objects carry
// kustomize's own helm-generated annotation, so its namespace transformer
// leaves them alone as it does for the generator's, and kustomize removes
// the annotation from the output.

const (
	// inflatedDir is the virtual component, beside the kustomization, that
	// holds its inflated helmCharts.
	inflatedDir  = ".keyless-helmcharts"
	inflatedFile = "inflated.yaml"
	// maxHelmCharts bounds the helmCharts entries of one build.
	maxHelmCharts = 256
	// inflatedBytesFactor bounds the manifests all helmCharts of a build
	// render, as a multiple of Limits.MaxFileBytes.
	inflatedBytesFactor = 8
	// helmDefaultReleaseName is the name `helm template` gives a release
	// kustomize passes none for (it asks for --generate-name, which helm
	// template ignores for its own default).
	helmDefaultReleaseName = "release-name"
	// maxFileSizeFlag is the flag of Limits.MaxFileBytes.
	maxFileSizeFlag = "--max-file-size"
)

// The values merge modes of a helmCharts entry (valuesMerge).
const (
	valuesMergeOverride = "override"
	valuesMergeMerge    = "merge"
	valuesMergeReplace  = "replace"
)

// helmChartsFS shows kustomize the rewritten kustomizations and their
// virtual components; every other path goes to the checkout's file system.
type helmChartsFS struct {
	filesys.FileSystem
	files map[string][]byte // absolute path → content
	dirs  map[string]bool   // virtual component folders
}

// CleanedAbs answers for the virtual folders and their files, which do not
// exist on disk.
func (h *helmChartsFS) CleanedAbs(path string) (filesys.ConfirmedDir, string, error) {
	p := filepath.Clean(path)
	if h.dirs[p] {
		return filesys.ConfirmedDir(p), "", nil
	}
	if h.dirs[filepath.Dir(p)] {
		return filesys.ConfirmedDir(filepath.Dir(p)), filepath.Base(p), nil
	}
	return h.FileSystem.CleanedAbs(path)
}

// IsDir is true for the virtual folders.
func (h *helmChartsFS) IsDir(path string) bool {
	return h.dirs[filepath.Clean(path)] || h.FileSystem.IsDir(path)
}

// Exists is true for the virtual folders and files.
func (h *helmChartsFS) Exists(path string) bool {
	p := filepath.Clean(path)
	if h.dirs[p] || h.files[p] != nil {
		return true
	}
	return h.FileSystem.Exists(path)
}

// ReadFile serves the rewritten kustomizations and the virtual files.
func (h *helmChartsFS) ReadFile(path string) ([]byte, error) {
	p := filepath.Clean(path)
	if data, ok := h.files[p]; ok {
		return data, nil
	}
	if h.dirs[filepath.Dir(p)] {
		return nil, fmt.Errorf("%s: %w", p, fs.ErrNotExist)
	}
	return h.FileSystem.ReadFile(path)
}

// helmInflation is the state of one build's pre-pass.
type helmInflation struct {
	ctx    context.Context
	root   string
	opts   Options
	dec    *decrypter
	fs     *helmChartsFS
	seen   map[string]bool   // kustomization folder + inherited namespace
	nsOf   map[string]string // kustomization file with helmCharts → inherited namespace
	charts int
	objs   int
	bytes  int64
	// onCharts handles a kustomization with helmCharts, once per file:
	// inflate for a render, a listing of charts to pull for
	// KustomizeChartPulls.
	onCharts func(kdir, kfile string, data []byte, k *types.Kustomization, inheritedNS string) error
}

// inflateHelmCharts walks the kustomizations of the build at dir (resources,
// bases and components that are folders, as checkKustomizationsOffline
// does) and inflates their helmCharts; fsys is wrapped to show kustomize
// the result. Without helmCharts anywhere, fsys is returned as it is.
func inflateHelmCharts(ctx context.Context, root, dir string, opts Options, dec *decrypter, fsys filesys.FileSystem) (filesys.FileSystem, error) {
	in := &helmInflation{ctx: ctx, root: root, opts: opts, dec: dec,
		fs:   &helmChartsFS{FileSystem: fsys, files: map[string][]byte{}, dirs: map[string]bool{}},
		seen: map[string]bool{}, nsOf: map[string]string{}}
	in.onCharts = in.inflate
	if err := in.visit(dir, "", 0); err != nil {
		return nil, err
	}
	if len(in.fs.files) == 0 {
		return fsys, nil
	}
	return in.fs, nil
}

// visit hands the kustomization in kdir and those it includes, when they
// have helmCharts, to in.onCharts; inheritedNS is kustomize's helmRootNamespace: the namespace of
// the nearest including kustomization that sets one.
func (in *helmInflation) visit(kdir, inheritedNS string, depth int) error {
	key := kdir + "\x00" + inheritedNS
	if in.seen[key] || depth > maxScanDepth {
		return nil
	}
	in.seen[key] = true
	name := ""
	for _, n := range kustomizationFiles {
		if exists(filepath.Join(kdir, n)) {
			name = n
			break
		}
	}
	if name == "" {
		return nil
	}
	kfile := filepath.Join(kdir, name)
	rel := confine.Rel(in.root, kfile)
	resolved, err := joinNoted(in.root, kdir, name)
	if err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	data, err := readLimited(resolved, rel, in.opts.Limits.MaxFileBytes)
	if err != nil {
		return err
	}
	var k types.Kustomization
	if err := yaml.Unmarshal(data, &k); err != nil {
		return decodeError(rel, document{line: 1, data: data}, err)
	}
	var refs struct{ Resources, Bases, Components []string } // bases: deprecated, still read
	_ = yaml.Unmarshal(data, &refs)
	childNS := k.Namespace
	if childNS == "" {
		childNS = inheritedNS
	}
	for _, s := range append(append(refs.Resources, refs.Bases...), refs.Components...) {
		sub, err := joinNoted(in.root, kdir, s)
		if err != nil {
			continue // kustomize's secure file system reports it
		}
		if fi, err := statNoted(sub); err == nil && fi.IsDir() {
			if err := in.visit(sub, childNS, depth+1); err != nil {
				return err
			}
		}
	}
	if len(k.HelmCharts) == 0 {
		return nil
	}
	if prev, ok := in.nsOf[kfile]; ok {
		if prev != inheritedNS && k.Namespace == "" {
			return fmt.Errorf("%s: helmCharts inflated for two namespaces (%q and %q, from the kustomizations that include it); keyless inflates a kustomization once: set namespace in it or in its helmCharts", rel, prev, inheritedNS)
		}
		return nil
	}
	in.nsOf[kfile] = inheritedNS
	return in.onCharts(kdir, kfile, data, &k, inheritedNS)
}

// inflate renders the helmCharts of one kustomization and records the
// rewritten kustomization and its virtual component.
func (in *helmInflation) inflate(kdir, kfile string, data []byte, k *types.Kustomization, inheritedNS string) error {
	rel := confine.Rel(in.root, kfile)
	vdir := filepath.Join(kdir, inflatedDir)
	if exists(vdir) {
		return fmt.Errorf("%s: helmCharts: %s exists; keyless inflates charts there: rename it", rel, confine.Rel(in.root, vdir))
	}
	var globals types.HelmGlobals
	if k.HelmGlobals != nil {
		globals = *k.HelmGlobals
	}
	var nodes []*kyaml.RNode
	for i := range k.HelmCharts {
		in.charts++
		if in.charts > maxHelmCharts {
			return &LimitError{Limit: "helmCharts", Where: rel, Detail: fmt.Sprintf("more than %d helmCharts entries in one build", maxHelmCharts)}
		}
		h := k.HelmCharts[i]
		if h.Namespace == "" {
			h.Namespace = k.Namespace
		}
		if h.Namespace == "" {
			h.Namespace = inheritedNS
		}
		out, err := in.inflateChart(kdir, rel, globals, h)
		if err != nil {
			return err
		}
		nodes = append(nodes, out...)
	}
	rewritten, err := withoutHelmCharts(data)
	if err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	component := "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"
	if len(nodes) > 0 {
		var buf bytes.Buffer
		if err := (kio.ByteWriter{Writer: &buf}).Write(nodes); err != nil {
			return fmt.Errorf("%s: helmCharts: %w", rel, err)
		}
		in.fs.files[filepath.Join(vdir, inflatedFile)] = withGenerateNamesAsNames(inflatedFile, buf.Bytes())
		component += "resources:\n- " + inflatedFile + "\n"
	}
	in.fs.dirs[vdir] = true
	in.fs.files[filepath.Join(vdir, "kustomization.yaml")] = []byte(component)
	in.fs.files[kfile] = rewritten
	return nil
}

// withoutHelmCharts removes helmCharts and helmGlobals from a kustomization
// and lists the virtual component first in its components.
func withoutHelmCharts(data []byte) ([]byte, error) {
	rn, err := kyaml.Parse(string(data))
	if err != nil {
		return nil, err
	}
	for _, f := range []string{"helmCharts", "helmGlobals"} {
		if err := rn.PipeE(kyaml.Clear(f)); err != nil {
			return nil, err
		}
	}
	comps, err := rn.Pipe(kyaml.LookupCreate(kyaml.SequenceNode, "components"))
	if err != nil {
		return nil, err
	}
	comps.YNode().Content = append([]*kyaml.Node{kyaml.NewStringRNode(inflatedDir).YNode()}, comps.YNode().Content...)
	s, err := rn.String()
	return []byte(s), err
}

// inflateChart renders one helmCharts entry as `kustomize build
// --enable-helm` has helm render it (HelmChartInflationGenerator and
// HelmChart.AsHelmArgs in sigs.k8s.io/kustomize/api), each object marked
// helm-generated.
func (in *helmInflation) inflateChart(kdir, rel string, globals types.HelmGlobals, h types.HelmChart) ([]*kyaml.RNode, error) {
	lim := in.opts.Limits
	what := fmt.Sprintf("%s: helmCharts %q", rel, h.Name)
	if h.Name == "" {
		return nil, fmt.Errorf("%s: helmCharts: chart name cannot be empty", rel)
	}
	if strings.HasPrefix(h.Name, "-") || strings.HasPrefix(h.ReleaseName, "-") {
		return nil, fmt.Errorf("%s: chart and release names must not start with '-'", what)
	}
	switch h.ValuesMerge {
	case "":
		h.ValuesMerge = valuesMergeOverride
	case valuesMergeOverride, valuesMergeMerge, valuesMergeReplace:
	default:
		return nil, fmt.Errorf("%s: valuesMerge must be one of [%s %s %s]", what, valuesMergeMerge, valuesMergeOverride, valuesMergeReplace)
	}
	chartDir, chartRoot, err := in.chartDir(kdir, what, globals, h)
	if err != nil {
		return nil, err
	}
	chrt, err := loadChart(chartRoot, chartDir, in.opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	vals, err := in.values(kdir, chartRoot, chartDir, what, h)
	if err != nil {
		return nil, err
	}
	release, err := helmReleaseName(h, lim)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	// kustomize's --helm-kube-version and --helm-api-versions (the
	// cluster's, here) apply where the entry sets none.
	t := helmTemplateOptions{ReleaseName: release, Namespace: h.Namespace,
		KubeVersion: h.KubeVersion, APIVersions: h.ApiVersions,
		IncludeCRDs: h.IncludeCRDs, SkipTests: h.SkipTests, NoHooks: h.SkipHooks}
	if t.Namespace == "" {
		t.Namespace = in.opts.Namespace
	}
	if t.Namespace == "" {
		t.Namespace = "default"
	}
	if t.KubeVersion == "" {
		t.KubeVersion = in.opts.Helm.KubeVersion
	}
	if len(t.APIVersions) == 0 {
		t.APIVersions = in.opts.Helm.APIVersions
	}
	manifest, err := helmTemplate(in.ctx, chartDisplay(in.root, chartRoot, chartDir, h), chrt, vals, t, lim)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	in.bytes += int64(len(manifest))
	if maxBytes := inflatedBytesFactor * lim.MaxFileBytes; in.bytes > maxBytes {
		return nil, &LimitError{Limit: maxFileSizeFlag, Where: rel, Detail: fmt.Sprintf("helmCharts render more than %d bytes (%d × the file size limit)", maxBytes, inflatedBytesFactor)}
	}
	nodes, err := (&kio.ByteReader{Reader: bytes.NewReader(manifest), OmitReaderAnnotations: true}).Read()
	if err != nil {
		return nil, fmt.Errorf("%s: reading the rendered chart: %w", what, err)
	}
	in.objs += len(nodes)
	if in.objs > lim.MaxObjects {
		return nil, tooManyObjects(rel+" helmCharts", lim.MaxObjects)
	}
	for _, n := range nodes {
		if err := n.PipeE(kyaml.SetAnnotation(konfig.HelmGeneratedAnnotation, "true")); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
	}
	return nodes, nil
}

// chartDir finds the chart where kustomize looks for it: chartHome/<name>,
// or chartHome/<name>-<version>/<name> for a chart with a repo and a
// version; else, for a chart with a repo, the folder the controller pulled
// it into (HelmOptions.PulledCharts). It returns the chart's folder and the
// root its files are confined to: the checkout's for a vendored chart, the
// pulled chart's own folder for a pulled one. A chart with a repo that is
// neither is refused: kustomize would pull it, a render never does.
func (in *helmInflation) chartDir(kdir, what string, globals types.HelmGlobals, h types.HelmChart) (dir, chartRoot string, err error) {
	dir, relDir, err := in.vendoredChart(kdir, what, globals, h)
	if err != nil || dir != "" {
		return dir, in.root, err
	}
	where := filepath.ToSlash(relDir)
	if h.Repo == "" {
		return "", "", fmt.Errorf("%s: no repo specified for pull, no chart found at %s: commit the chart there", what, where)
	}
	if pulled, ok := in.opts.Helm.PulledCharts[PulledChartKey(h.Repo, h.Name, h.Version)]; ok {
		return pulledChart(what, pulled)
	}
	return "", "", fmt.Errorf("%s: the chart is pulled from %s, which renders never do (no network) and nothing fetched for this one: vendor it at %s (helm pull %s --repo %s --untar --untardir %s) and commit it, or render through the controller, which fetches it: %w",
		what, h.Repo, where, h.Name, h.Repo, filepath.ToSlash(filepath.Dir(relDir)), ErrRemoteReference)
}

// vendoredChart is the folder, inside the root, where kustomize looks for
// the chart (relDir, relative to the root) and that folder when it exists
// (dir; "" when it does not).
func (in *helmInflation) vendoredChart(kdir, what string, globals types.HelmGlobals, h types.HelmChart) (dir, relDir string, err error) {
	home := globals.ChartHome
	if home == "" {
		home = types.HelmDefaultHome
	}
	if h.Version != "" && h.Repo != "" {
		home = filepath.Join(home, h.Name+"-"+h.Version)
	}
	relDir, err = confine.Lexical(in.root, kdir, filepath.Join(home, h.Name))
	if err != nil {
		return "", "", fmt.Errorf("%s: chartHome %w", what, err)
	}
	dir, err = joinNoted(in.root, in.root, relDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return "", "", fmt.Errorf("%s: chart %w", what, err)
	default:
		if fi, err := statNoted(dir); err == nil && fi.IsDir() {
			return dir, relDir, nil
		}
	}
	return "", relDir, nil
}

// pulledChart is a chart the controller pulled: an absolute folder, which
// is also the root its files are confined to.
func pulledChart(what, folder string) (string, string, error) {
	if !filepath.IsAbs(folder) {
		return "", "", fmt.Errorf("%s: the pulled chart's folder %q is not an absolute path", what, folder)
	}
	dir, err := confine.Root(folder)
	if err != nil {
		return "", "", fmt.Errorf("%s: pulled chart: %w", what, err)
	}
	return dir, dir, nil
}

// values are the chart's values as kustomize hands them to helm: the
// values file (default: the chart's values.yaml, read inside chartRoot)
// with valuesInline merged by valuesMerge (kyaml's merge2, as kustomize),
// then additionalValuesFiles.
func (in *helmInflation) values(kdir, chartRoot, chartDir, what string, h types.HelmChart) (map[string]any, error) {
	lim := in.opts.Limits
	root, base, vf := in.root, kdir, h.ValuesFile
	if vf == "" {
		root, base, vf = chartRoot, chartDir, "values.yaml"
	}
	var out map[string]any
	if len(h.ValuesInline) > 0 {
		vals := h.ValuesInline
		if h.ValuesMerge != valuesMergeReplace {
			data, _, err := readValueData(root, base, vf, what, lim, in.dec)
			if err != nil {
				return nil, err
			}
			if vals, err = mergeInline(data, h.ValuesInline, h.ValuesMerge); err != nil {
				return nil, fmt.Errorf("%s: valuesInline: %w", what, err)
			}
		}
		// Through YAML, as kustomize writes the values file helm reads.
		data, err := yaml.Marshal(vals)
		if err != nil {
			return nil, fmt.Errorf("%s: values: %w", what, err)
		}
		if out, err = parseValues(what+" values", data); err != nil {
			return nil, err
		}
	} else {
		var err error
		if out, err = readValueFile(root, base, vf, what, lim, in.dec); err != nil {
			return nil, err
		}
	}
	if out == nil {
		out = map[string]any{}
	}
	for _, f := range h.AdditionalValuesFiles {
		m, err := readValueFile(in.root, kdir, f, what, lim, in.dec)
		if err != nil {
			return nil, err
		}
		out = mergeMaps(out, m)
	}
	return out, nil
}

// mergeInline merges valuesInline into the values file: override (inline
// wins) or merge (the file wins), with kyaml's merge2 on the parsed file, as
// kustomize does.
func mergeInline(file []byte, inline map[string]any, mode string) (map[string]any, error) {
	fileNode, err := kyaml.Parse(string(file))
	if err != nil {
		return nil, err
	}
	inlineNode, err := kyaml.FromMap(inline)
	if err != nil {
		return nil, err
	}
	var out *kyaml.RNode
	if mode == valuesMergeOverride {
		out, err = merge2.Merge(inlineNode, fileNode, kyaml.MergeOptions{})
	} else {
		out, err = merge2.Merge(fileNode, inlineNode, kyaml.MergeOptions{})
	}
	if err != nil {
		return nil, err
	}
	return out.Map()
}

// chartDisplay names a chart in messages: its folder in the checkout, or
// name-version from repo for a pulled one.
func chartDisplay(root, chartRoot, chartDir string, h types.HelmChart) string {
	if chartRoot == root {
		return confine.Rel(root, chartDir)
	}
	name := h.Name
	if h.Version != "" {
		name += "-" + h.Version
	}
	return name + " (pulled from " + h.Repo + ")"
}

// helmReleaseName is the release name `helm template` gets from kustomize:
// releaseName, else nameTemplate rendered (Helm's TemplateName, with a
// bounded repeat), else helm template's own default.
func helmReleaseName(h types.HelmChart, lim Limits) (string, error) {
	switch {
	case h.ReleaseName != "" && h.NameTemplate != "":
		return "", errors.New("cannot set --name-template and also specify a name (releaseName and nameTemplate are both set)")
	case h.ReleaseName != "":
		return h.ReleaseName, nil
	case h.NameTemplate == "":
		return helmDefaultReleaseName, nil
	}
	funcs := sprig.TxtFuncMap()
	funcs["repeat"] = cappedRepeat(lim.MaxFileBytes)
	t, err := template.New("name-template").Funcs(funcs).Parse(h.NameTemplate)
	if err != nil {
		return "", fmt.Errorf("nameTemplate: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, nil); err != nil {
		return "", fmt.Errorf("nameTemplate: %w", err)
	}
	return b.String(), nil
}

// Package render turns a directory of a Git checkout into Kubernetes objects:
// a Helm chart (Chart.yaml), a kustomization (kustomization.yaml) or a plain
// folder of YAML/JSON manifests and Jsonnet files, detected as Argo CD
// detects them (Detect). Nothing outside the checkout root is read.
package render

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/keyless-cd/keyless/internal/confine"
	"github.com/keyless-cd/keyless/internal/readset"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Kind says how a directory was rendered.
type Kind string

// The kinds of source directory.
const (
	KindPlain     Kind = "plain"
	KindKustomize Kind = "kustomize"
	KindHelm      Kind = "helm"
)

// Limits bound what a render may consume. Zero fields take the defaults.
type Limits struct {
	// MaxFileBytes is the largest file read. Default 10 MiB.
	MaxFileBytes int64
	// MaxObjects is the most objects a render may produce. Default 5000.
	MaxObjects int
}

// DefaultLimits are the limits used for zero fields.
var DefaultLimits = Limits{MaxFileBytes: 10 << 20, MaxObjects: 5000}

// HelmOptions configure a Helm chart render (like `helm template`).
type HelmOptions struct {
	// ReleaseName is .Release.Name. Default: the chart's name.
	ReleaseName string
	// ValueFiles are merged in order; paths are relative to the chart folder
	// and must stay inside the root.
	ValueFiles []string
	// Values are merged last (inline values, like --set).
	Values map[string]any
	// KubeVersion is .Capabilities.KubeVersion (`helm template
	// --kube-version`). Default: the Kubernetes version keyless is built
	// against (version.KubernetesVersion); the controller passes the
	// cluster's.
	KubeVersion string `json:"kubeVersion,omitempty"`
	// APIVersions are added to .Capabilities.APIVersions (`helm template
	// --api-versions`): "group/version" or "group/version/Kind". Default:
	// only the API versions of the linked client-go; the controller passes
	// the cluster's.
	APIVersions []string `json:"apiVersions,omitempty"`
	// Dependencies are chart archives (.tgz) the controller fetched and
	// verified for the chart's Chart.yaml dependencies that are not
	// vendored under charts/ (internal/helmrepo): they are read from where
	// they are, outside Root. file:// dependencies are read from inside
	// Root. Default none.
	Dependencies []string `json:"dependencies,omitempty"`
	// PulledCharts are the kustomize helmCharts charts with a repo that
	// are not vendored (KustomizeChartPulls), fetched and unpacked by the
	// controller: PulledChartKey(repo, name, version) → the chart's
	// folder, an absolute path outside Root. Such a chart is read from
	// that folder and confined to it (values.yaml included). A repo chart
	// neither vendored nor here is refused (ErrRemoteReference). Default
	// none.
	PulledCharts map[string]string `json:"pulledCharts,omitempty"`
}

// Options configure Render.
type Options struct {
	// Root is the checkout; nothing outside it is read.
	Root string
	// Path is the folder to render, relative to Root. Default ".".
	Path string
	// Namespace is the target namespace: Helm's .Release.Namespace, and the
	// namespace assumed for objects without one when checking for duplicates.
	Namespace string
	// Helm configures chart rendering.
	Helm HelmOptions
	// RefRoots are the checkouts of the Application's spec.sources entries
	// with a ref, by ref: helm.valueFiles read $ref/path inside them (and
	// nothing else of them). Default none.
	RefRoots map[string]string `json:"refRoots,omitempty"`
	// Directory configures a plain folder (Argo CD's
	// spec.source.directory): recursion, include/exclude globs, Jsonnet.
	// Default: the folder's own files, all of them, Jsonnet without
	// variables.
	Directory DirectoryOptions `json:"directory,omitzero"`
	// AllowRemoteBases lets kustomizations load remote bases. Default false.
	AllowRemoteBases bool
	// Limits bound the render.
	Limits Limits
	// Decryption holds the keys of SOPS-encrypted files. Default nil: a
	// SOPS-encrypted file is refused.
	Decryption *Decryption `json:"decryption,omitempty"`
	// ReadEncrypted reads SOPS files without keys as ciphertext (values
	// stay ENC[…], the sops metadata is dropped) instead of refusing them:
	// for a preview or a Role derivation, never for an apply. Ignored when
	// Decryption is set. Default false.
	ReadEncrypted bool `json:"readEncrypted,omitempty"`
}

// Result is a successful render.
type Result struct {
	// Kind is how the directory was rendered.
	Kind Kind
	// Objects are the rendered objects, in render order.
	Objects []*unstructured.Unstructured
	// Warnings are things the user should know about the render, e.g. files
	// of a plain directory that were not rendered and why.
	Warnings []string
	// Decrypted are the SOPS files decrypted (relative to the root): when
	// there are any, some objects hold plaintext that must not be kept.
	Decrypted []string
	// Inputs are the paths of the checkout the render used (files read,
	// paths looked at, folders listed or loaded whole), relative to Root:
	// a commit that leaves each of them as it was renders the same
	// objects. Nil when the render read something they cannot describe
	// (a multi-source $ref checkout, more than readset.MaxInputs paths).
	Inputs  []readset.Input
	sources map[*unstructured.Unstructured]string
}

// NewResult makes a Result of objects rendered elsewhere (a render process);
// sources[i] is where objs[i] came from.
func NewResult(kind Kind, objs []*unstructured.Unstructured, sources []string) *Result {
	r := &Result{Kind: kind, Objects: objs, sources: make(map[*unstructured.Unstructured]string, len(objs))}
	for i, o := range objs {
		if i < len(sources) {
			r.sources[o] = sources[i]
		}
	}
	return r
}

// Source returns where obj came from (file:line, template or kustomization),
// or "" when unknown.
func (r *Result) Source(obj *unstructured.Unstructured) string { return r.sources[obj] }

// Render renders opts.Path inside opts.Root. Errors name the file and line,
// the chart template, or the object (Kind/name).
func Render(ctx context.Context, opts Options) (*Result, error) {
	if opts.Limits.MaxFileBytes == 0 {
		opts.Limits.MaxFileBytes = DefaultLimits.MaxFileBytes
	}
	if opts.Limits.MaxObjects == 0 {
		opts.Limits.MaxObjects = DefaultLimits.MaxObjects
	}
	if opts.Path == "" {
		opts.Path = "."
	}
	root, err := confine.Root(opts.Root)
	if err != nil {
		return nil, err
	}
	dir, err := joinNoted(root, root, opts.Path)
	if err != nil {
		return nil, fmt.Errorf("path %w", err)
	}
	rec, stop := track(root, opts)
	defer stop()
	if fi, err := statNoted(dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("path %q is not a directory inside %s", opts.Path, root)
	}
	note(dir, readset.List) // what Detect decides from
	dec, err := newDecrypter(opts.Decryption, opts.ReadEncrypted)
	if err != nil {
		return nil, err
	}
	kind := Detect(dir)
	var objs []sourced
	var unrendered []unrenderedFile
	var skippedDirs []string
	switch kind {
	case KindHelm:
		objs, err = renderHelm(ctx, root, dir, opts, dec)
	case KindKustomize:
		objs, err = renderKustomize(ctx, root, dir, opts, dec)
	default:
		objs, unrendered, skippedDirs, err = renderPlain(ctx, root, dir, opts, dec)
	}
	if err != nil {
		return nil, err
	}
	if err := checkNoSOPSMetadata(objs); err != nil {
		return nil, err
	}
	// A directory of only docs (README.md) is an empty render (refused later
	// unless allowEmpty); one of manifests in another format is an error.
	if len(objs) == 0 && len(otherFormats(unrendered)) > 0 {
		return nil, fmt.Errorf("%w: %s holds no *.yaml, *.yml, *.json or *.jsonnet manifest; not rendered: %s", ErrNothingRendered, displayDir(opts.Path), describeUnrendered(unrendered))
	}
	if len(objs) > opts.Limits.MaxObjects {
		return nil, tooManyObjects(opts.Path, opts.Limits.MaxObjects)
	}
	if err := validate(objs, opts.Namespace); err != nil {
		return nil, err
	}
	res := &Result{Kind: kind, Decrypted: dec.decrypted, sources: make(map[*unstructured.Unstructured]string, len(objs))}
	if n := len(dec.encrypted); n > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%d SOPS files read encrypted, without a key (their values compare as ciphertext): %s", n, strings.Join(dec.encrypted, ", ")))
	}
	if other := otherFormats(unrendered); len(other) > 0 {
		res.Warnings = append(res.Warnings, "not rendered: "+describeUnrendered(other))
	}
	if len(skippedDirs) > 0 {
		res.Warnings = append(res.Warnings, "subfolders not rendered (directory.recurse is false, as in Argo CD; set it, or --directory-recurse, to render them): "+strings.Join(skippedDirs, ", "))
	}
	for _, o := range objs {
		res.Objects = append(res.Objects, o.obj)
		res.sources[o.obj] = o.source
	}
	if inputs, ok := rec.Inputs(); ok {
		res.Inputs = inputs
	}
	return res, nil
}

// kustomizationFiles are the names kustomize recognises.
var kustomizationFiles = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

// Detect says how dir would be rendered, as Argo CD decides
// (util/app/discovery): a kustomization file → kustomize, else Chart.yaml →
// Helm, else a plain folder. A folder holding both is a kustomization, as in
// Argo CD (whose walk lets the later name win, and every kustomization name
// sorts after Chart.yaml). Unlike Argo CD, which takes any *Chart.yaml (a
// manifest named HelmChart.yaml makes it run helm and fail), only
// Chart.yaml itself means a chart. This is the one place that decides.
func Detect(dir string) Kind {
	for _, name := range kustomizationFiles {
		if isFile(filepath.Join(dir, name)) {
			return KindKustomize
		}
	}
	if isFile(filepath.Join(dir, "Chart.yaml")) {
		return KindHelm
	}
	return KindPlain
}

// isFile says whether path exists and is not a folder (a symlink counts, as
// in Argo CD's walk; where it leads is checked when it is read).
func isFile(path string) bool {
	fi, err := lstatNoted(path)
	if err != nil {
		return !errors.Is(err, fs.ErrNotExist)
	}
	return !fi.IsDir()
}

func exists(path string) bool {
	_, err := lstatNoted(path)
	return err == nil || !errors.Is(err, fs.ErrNotExist)
}

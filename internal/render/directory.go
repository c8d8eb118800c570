package render

import (
	"fmt"
	"path/filepath"

	"github.com/gobwas/glob"
)

// DirectoryOptions configure a plain folder, as Argo CD's
// spec.source.directory does. They are ignored for Helm charts and
// kustomizations.
type DirectoryOptions struct {
	// Recurse renders the manifests of subfolders too. Default false, as in
	// Argo CD: only the folder's own files are read.
	Recurse bool `json:"recurse,omitempty"`
	// Include is a glob matched against each manifest's path relative to
	// the folder ("*.yaml", "{a.yaml,b.yaml}", "sub/*"): only matching
	// files are rendered. As in Argo CD, "*" also matches "/". Default "":
	// every manifest.
	Include string `json:"include,omitempty"`
	// Exclude is a glob, matched like Include, of the manifests not to
	// render; it wins over Include. Default "": none excluded.
	Exclude string `json:"exclude,omitempty"`
	// Jsonnet configures the evaluation of *.jsonnet files.
	Jsonnet JsonnetOptions `json:"jsonnet,omitzero"`
}

// JsonnetOptions configure the evaluation of a plain folder's *.jsonnet
// files (Argo CD's directory.jsonnet).
type JsonnetOptions struct {
	// ExtVars are the values of std.extVar(name). Default none.
	ExtVars []JsonnetVar `json:"extVars,omitempty"`
	// TLAs are the top-level arguments, passed when a file evaluates to a
	// function. Default none.
	TLAs []JsonnetVar `json:"tlas,omitempty"`
	// Libs are library folders, relative to the repository root, searched
	// by import after the importing file's folder (the last first), then the
	// rendered folder. They must stay inside the root. Default none.
	Libs []string `json:"libs,omitempty"`
}

// JsonnetVar is one external variable or top-level argument.
type JsonnetVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	// Code evaluates Value as jsonnet code instead of passing it as a
	// string. Default false.
	Code bool `json:"code,omitempty"`
}

// fileFilter is a compiled include/exclude pair.
type fileFilter struct {
	include, exclude glob.Glob
}

// newFileFilter compiles d's globs as Argo CD does (github.com/gobwas/glob,
// no separators: "*" matches "/" too). An invalid glob is an error, where
// Argo CD logs it and matches nothing.
func newFileFilter(d DirectoryOptions) (fileFilter, error) {
	var f fileFilter
	var err error
	if d.Include != "" {
		if f.include, err = glob.Compile(d.Include); err != nil {
			return f, fmt.Errorf("directory.include %q is not a valid glob: %w", d.Include, err)
		}
	}
	if d.Exclude != "" {
		if f.exclude, err = glob.Compile(d.Exclude); err != nil {
			return f, fmt.Errorf("directory.exclude %q is not a valid glob: %w", d.Exclude, err)
		}
	}
	return f, nil
}

// selects says whether the manifest at rel (relative to the rendered folder)
// is rendered: not excluded, and included when an include is set.
func (f fileFilter) selects(rel string) bool {
	rel = filepath.ToSlash(rel)
	if f.exclude != nil && f.exclude.Match(rel) {
		return false
	}
	return f.include == nil || f.include.Match(rel)
}

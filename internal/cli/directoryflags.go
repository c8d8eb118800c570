package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/keyless-cd/keyless/internal/render"
)

// directoryFlags are Argo CD's `argocd app create` flags for a plain folder
// (spec.source.directory), with its names.
type directoryFlags struct {
	recurse               bool
	include, exclude      string
	extVarStr, extVarCode []string
	tlaStr, tlaCode       []string
	libs                  []string
}

func (f *directoryFlags) addFlags(fl *pflag.FlagSet) {
	fl.BoolVar(&f.recurse, "directory-recurse", false, "render the manifests of a plain folder's subfolders too (default the folder's own files, as in Argo CD)")
	fl.StringVar(&f.include, "directory-include", "", "glob of a plain folder's files to render, matched against the path relative to DIR, e.g. '*.yaml' or '{a.yaml,b.json}' ('*' also matches '/', as in Argo CD)")
	fl.StringVar(&f.exclude, "directory-exclude", "", "glob of a plain folder's files not to render (wins over --directory-include)")
	fl.StringArrayVar(&f.extVarStr, "jsonnet-ext-var-str", nil, "Jsonnet external variable as name=value, a string (repeatable)")
	fl.StringArrayVar(&f.extVarCode, "jsonnet-ext-var-code", nil, "Jsonnet external variable as name=code, evaluated as Jsonnet (repeatable)")
	fl.StringArrayVar(&f.tlaStr, "jsonnet-tla-str", nil, "Jsonnet top-level argument as name=value, a string (repeatable)")
	fl.StringArrayVar(&f.tlaCode, "jsonnet-tla-code", nil, "Jsonnet top-level argument as name=code, evaluated as Jsonnet (repeatable)")
	fl.StringArrayVar(&f.libs, "jsonnet-libs", nil, "Jsonnet library folder searched by import, relative to --root (repeatable; must be inside it)")
}

// options returns the render options the flags say.
func (f *directoryFlags) options() (render.DirectoryOptions, error) {
	d := render.DirectoryOptions{Recurse: f.recurse, Include: f.include, Exclude: f.exclude, Jsonnet: render.JsonnetOptions{Libs: f.libs}}
	var err error
	if d.Jsonnet.ExtVars, err = jsonnetVarFlags("--jsonnet-ext-var-str", f.extVarStr, false, nil); err != nil {
		return d, err
	}
	if d.Jsonnet.ExtVars, err = jsonnetVarFlags("--jsonnet-ext-var-code", f.extVarCode, true, d.Jsonnet.ExtVars); err != nil {
		return d, err
	}
	if d.Jsonnet.TLAs, err = jsonnetVarFlags("--jsonnet-tla-str", f.tlaStr, false, nil); err != nil {
		return d, err
	}
	d.Jsonnet.TLAs, err = jsonnetVarFlags("--jsonnet-tla-code", f.tlaCode, true, d.Jsonnet.TLAs)
	return d, err
}

// jsonnetVarFlags parses name=value flags as Argo CD does (split at the
// first "="; a name alone is an empty value) and appends them to out.
func jsonnetVarFlags(flag string, vals []string, code bool, out []render.JsonnetVar) ([]render.JsonnetVar, error) {
	for _, s := range vals {
		name, value, _ := strings.Cut(s, "=")
		if name == "" {
			return nil, fmt.Errorf("%s %q: want name=value", flag, s)
		}
		out = append(out, render.JsonnetVar{Name: name, Value: value, Code: code})
	}
	return out, nil
}

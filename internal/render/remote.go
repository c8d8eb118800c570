package render

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/keyless-cd/keyless/internal/confine"

	"sigs.k8s.io/yaml"
)

// ErrRemoteReference is returned (wrapped) when a kustomization or a Helm
// values schema refers to something outside the checkout (a URL, a remote
// base, a file:// schema): a render never touches the network, and nothing
// is fetched before the refusal.
var ErrRemoteReference = errors.New("remote reference")

// maxScanDepth bounds the nesting walked in a schema or kustomization.
const maxScanDepth = 256

// kustomizationPathFields are the kustomization fields whose strings (or
// lists of strings) kustomize loads as files or folders.
var kustomizationPathFields = []string{"resources", "bases", "components", "crds", "patchesStrategicMerge",
	"generators", "transformers", "validators", "configurations"}

// hostLikeRE matches the start of a remote target written without a scheme
// (github.com/org/repo//path?ref=v1), which kustomize treats as remote when
// no such local path exists.
var hostLikeRE = regexp.MustCompile(`^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+(:[0-9]+)?/`)

// KustomizationRemoteRefs returns the entries of a kustomization file that
// kustomize would fetch from the network: http(s)/git URLs, ssh remotes, and
// host-like paths that do not exist under dir. exists tells whether a path
// relative to dir exists locally (nil: nothing exists). A helmCharts repo
// is not one: a chart vendored under chartHome is used without pulling, and
// one that is not is refused by the inflation (kustomize_helm.go).
func KustomizationRemoteRefs(data []byte, exists func(rel string) bool) ([]string, error) {
	var k map[string]any
	if err := yaml.Unmarshal(data, &k); err != nil {
		return nil, err
	}
	var out []string
	check := func(s string) {
		if isRemoteRef(s, exists) {
			out = append(out, s)
		}
	}
	checkFile := func(s string) { // generator sources may be key=path
		if _, after, ok := strings.Cut(s, "="); ok && !strings.Contains(s[:strings.Index(s, "=")], "://") {
			s = after
		}
		check(s)
	}
	for _, f := range kustomizationPathFields {
		for _, s := range strings_(k[f]) {
			check(s)
		}
	}
	for _, p := range maps(k["patches"]) {
		check(str(p["path"]))
	}
	for _, p := range maps(k["patchesJson6902"]) {
		check(str(p["path"]))
	}
	for _, p := range maps(k["replacements"]) {
		check(str(p["path"]))
	}
	for _, gen := range []string{"configMapGenerator", "secretGenerator"} {
		for _, g := range maps(k[gen]) {
			for _, s := range strings_(g["files"]) {
				checkFile(s)
			}
			for _, s := range strings_(g["envs"]) {
				check(s)
			}
			check(str(g["env"]))
		}
	}
	if o, ok := k["openapi"].(map[string]any); ok {
		check(str(o["path"]))
	}
	return out, nil
}

func isRemoteRef(s string, exists func(string) bool) bool {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return false
	case strings.Contains(s, "://"), strings.HasPrefix(s, "git@"), strings.HasPrefix(s, "git::"):
		return true
	case hostLikeRE.MatchString(s):
		return exists == nil || !exists(s)
	}
	return false
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func strings_(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func maps(v any) []map[string]any {
	l, _ := v.([]any)
	var out []map[string]any
	for _, e := range l {
		if m, ok := e.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// checkKustomizationsOffline refuses, before kustomize runs, every remote
// reference in the kustomization at dir and in the local kustomizations it
// includes (resources, bases and components that are folders).
func checkKustomizationsOffline(root, dir string, lim Limits) error {
	seen := map[string]bool{}
	var visit func(dir string, depth int) error
	visit = func(dir string, depth int) error {
		if seen[dir] || depth > maxScanDepth {
			return nil
		}
		seen[dir] = true
		file := ""
		for _, name := range kustomizationFiles {
			if p := filepath.Join(dir, name); exists(p) {
				file = p
				break
			}
		}
		if file == "" {
			return nil
		}
		rel := confine.Rel(root, file)
		resolved, err := joinNoted(root, dir, filepath.Base(file))
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		data, err := readLimited(resolved, rel, lim.MaxFileBytes)
		if err != nil {
			return err
		}
		refs, err := KustomizationRemoteRefs(data, func(p string) bool { return exists(filepath.Join(dir, filepath.FromSlash(p))) })
		if err != nil {
			return decodeError(rel, document{line: 1, data: data}, err)
		}
		if len(refs) > 0 {
			return fmt.Errorf("kustomize build %s: %s: %q is fetched from the network, which renders never do; vendor it into the repository: %w", confine.Rel(root, dir), rel, refs[0], ErrRemoteReference)
		}
		var k map[string]any
		_ = yaml.Unmarshal(data, &k)
		for _, f := range []string{"resources", "bases", "components"} {
			for _, s := range strings_(k[f]) {
				sub, err := joinNoted(root, dir, s)
				if err != nil {
					continue // kustomize's own secure FS reports it
				}
				if fi, err := statNoted(sub); err == nil && fi.IsDir() {
					if err := visit(sub, depth+1); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	return visit(dir, 0)
}

// metaSchemaDocs are the documents under json-schema.org that Helm's JSON
// schema library (santhosh-tekuri/jsonschema v6) carries built in and
// resolves offline, over http or https alike; "schema" is the latest draft.
var metaSchemaDocs = map[string]bool{
	"schema": true, "draft-04/schema": true, "draft-06/schema": true, "draft-07/schema": true,
	"draft/2019-09/schema": true, "draft/2020-12/schema": true,
	"draft/2019-09/meta/applicator": true, "draft/2019-09/meta/content": true, "draft/2019-09/meta/core": true,
	"draft/2019-09/meta/format": true, "draft/2019-09/meta/meta-data": true, "draft/2019-09/meta/validation": true,
	"draft/2020-12/meta/applicator": true, "draft/2020-12/meta/content": true, "draft/2020-12/meta/core": true,
	"draft/2020-12/meta/format-annotation": true, "draft/2020-12/meta/format-assertion": true,
	"draft/2020-12/meta/meta-data": true, "draft/2020-12/meta/unevaluated": true, "draft/2020-12/meta/validation": true,
}

// isMetaSchema reports a reference to a built-in meta-schema (any fragment):
// nothing is fetched for it.
func isMetaSchema(ref string) bool {
	doc, _, _ := strings.Cut(ref, "#")
	rest, ok := strings.CutPrefix(doc, "http://json-schema.org/")
	if !ok {
		rest, ok = strings.CutPrefix(doc, "https://json-schema.org/")
	}
	return ok && metaSchemaDocs[rest]
}

// SchemaRemoteRefs returns the references of a JSON schema (a Helm chart's
// values.schema.json) that leave the document: every $ref, $dynamicRef or
// $recursiveRef that is not a fragment ("#..."), and a $schema that is not
// a built-in meta-schema. Helm resolves those through file:// and http(s)://.
func SchemaRemoteRefs(data []byte) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	var out []string
	var walk func(v any, depth int) error
	walk = func(v any, depth int) error {
		if depth > maxScanDepth {
			return fmt.Errorf("schema nested deeper than %d levels", maxScanDepth)
		}
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				s, isString := e.(string)
				switch {
				case !isString:
				case k == "$ref" || k == "$dynamicRef" || k == "$recursiveRef" || k == "$schema":
					if !strings.HasPrefix(s, "#") && !isMetaSchema(s) {
						out = append(out, s)
					}
				}
				if err := walk(e, depth+1); err != nil {
					return err
				}
			}
		case []any:
			for _, e := range v {
				if err := walk(e, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return out, walk(doc, 0)
}

package render

import (
	"fmt"
	"strings"

	"helm.sh/helm/v4/pkg/strvals"
)

// SetValue sets v at the dot path (a.b.c) in values, creating maps on the
// way, as `helm --set` does for simple paths.
func SetValue(values map[string]any, path string, v any) {
	keys := strings.Split(path, ".")
	m := values
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[keys[len(keys)-1]] = v
}

// SetHelmValue sets path to raw in values exactly as `helm --set path=raw`
// does (Helm's own strvals parser: integers, booleans and null are typed,
// a.b[0].c paths and {x,y} lists work, everything else is a string). The
// CLI's --helm-set and an Application's spec.source.helm.parameters both
// go through it, so the same chart renders the same way from either.
// raw is taken literally: a comma or backslash in it does not start a new
// value.
func SetHelmValue(values map[string]any, path, raw string) error {
	escaped := strings.NewReplacer(`\`, `\\`, `,`, `\,`).Replace(raw)
	if err := strvals.ParseInto(path+"="+escaped, values); err != nil {
		return fmt.Errorf("helm value %s: %w", path, err)
	}
	return nil
}

// InlineValues parses inline Helm values (YAML or JSON: an Application's
// helm.values or helm.valuesObject) as a values file is parsed; field names
// the field in errors.
func InlineValues(field string, data []byte) (map[string]any, error) {
	m, err := parseValues(field, data)
	if err != nil {
		return nil, err
	}
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

// MergeValues merges b over a, maps merged key by key (a later values file
// over an earlier one, as Helm does).
func MergeValues(a, b map[string]any) map[string]any { return mergeMaps(a, b) }

package render

import "strings"

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

package argocd

import (
	"strings"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

// directory carries the source's directory (recurse, include, exclude,
// jsonnet) over as it is: keyless reads plain folders as Argo CD does.
// Anything else under it (disableExtensionFilter) is left for the
// "not supported" warnings.
func (c *converter) directory(src *kv1.ApplicationSource) {
	d := &kv1.DirectorySource{}
	set := false
	if v, ok := c.take("directory.recurse"); ok {
		d.Recurse, _ = v.(bool)
		set = true
	}
	if v, ok := c.take("directory.include"); ok {
		d.Include, _ = v.(string)
		set = true
	}
	if v, ok := c.take("directory.exclude"); ok {
		d.Exclude, _ = v.(string)
		set = true
	}
	j := &kv1.JsonnetSource{}
	jset := false
	if v, ok := c.take("directory.jsonnet.extVars"); ok {
		j.ExtVars, jset = c.jsonnetVars(c.path("directory.jsonnet.extVars"), v), true
	}
	if v, ok := c.take("directory.jsonnet.tlas"); ok {
		j.TLAs, jset = c.jsonnetVars(c.path("directory.jsonnet.tlas"), v), true
	}
	if v, ok := c.take("directory.jsonnet.libs"); ok {
		j.Libs, jset = toStrings(v), true
	}
	if jset {
		d.Jsonnet, set = j, true
	}
	if set {
		src.Directory = d
	}
}

// jsonnetVars converts Argo CD's [{name, value, code}]; a value Argo CD
// would expand ($ARGOCD_APP_NAME, …) is carried as written, with a warning.
func (c *converter) jsonnetVars(path string, v any) []kv1.JsonnetVar {
	var out []kv1.JsonnetVar
	for i, item := range toSlice(v) {
		m, _ := item.(map[string]any)
		name, _ := m["name"].(string)
		if name == "" {
			c.warnf("%s[%d] has no name and was dropped", path, i)
			continue
		}
		value, _ := m["value"].(string)
		code, _ := m["code"].(bool)
		if strings.Contains(value, "$") {
			c.warnf("%s[%d] (%s): Argo CD expands its build variables ($ARGOCD_APP_NAME, …) in the value; keyless passes it as written", path, i, name)
		}
		out = append(out, kv1.JsonnetVar{Name: name, Value: value, Code: code})
	}
	return out
}

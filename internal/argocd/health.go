package argocd

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	yamlv3 "go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/keyless-cd/keyless/internal/celhealth"
)

// Argo CD keeps its Lua health checks in the argocd-cm ConfigMap, one key a
// group and kind (resource.customizations.health.<group>_<kind>), or in the
// older resource.customizations YAML ("<group>/<kind>": {health.lua: …}).
const (
	// ConfigMapName is the name of Argo CD's settings ConfigMap.
	ConfigMapName      = "argocd-cm"
	healthKeyPrefix    = "resource.customizations.health."
	customizationsKey  = "resource.customizations"
	customizationsPref = "resource.customizations."
	// placeholderVersion stands for a version the import cannot know:
	// keyless matches entries by group and kind, the version is ignored.
	placeholderVersion = "VERSION"
)

// HealthResult is what ConvertHealth made of an argocd-cm ConfigMap.
type HealthResult struct {
	// Entries is a YAML list for --health-check-exprs (or
	// spec.healthCheckExprs): converted entries, and skeletons (with a TODO
	// and the Lua as comments, no current expression, so that they are
	// refused until written) for what cannot be converted. Empty when
	// there is nothing to add.
	Entries []byte
	// Notes say what needs nothing (covered by the library) or what was
	// converted; Warnings what could not be converted and was left as a
	// skeleton, or was not read.
	Notes, Warnings []string
}

// IsConfigMap reports whether data is a ConfigMap (YAML or JSON), the
// second input of keyless import argocd beside an Application.
func IsConfigMap(data []byte) bool {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	return yaml.Unmarshal(data, &head) == nil && head.APIVersion == "v1" && head.Kind == "ConfigMap"
}

// customization is one Lua health check of argocd-cm.
type customization struct {
	key          string // where it is, as argocd-cm names it
	group, kind  string // "*" wildcards as Argo CD has them
	lua          string
	fromOldBlock bool
}

// ConvertHealth reads Argo CD's argocd-cm ConfigMap and carries its Lua
// health customisations over to keyless's CEL health (docs/health.md):
// a group and kind the built-in library judges needs nothing; a Lua script
// of a shape known to mean the same as CEL expressions (a condition's
// status, or status.phase, decides; see recognise) is converted; anything
// else becomes a skeleton entry with a TODO, never a guess.
func ConvertHealth(data []byte) (*HealthResult, error) {
	if len(data) > MaxInput {
		return nil, fmt.Errorf("input is larger than %d bytes", MaxInput)
	}
	var cm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(data, &cm); err != nil {
		return nil, fmt.Errorf("not a valid ConfigMap: %w", err)
	}
	if cm.APIVersion != "v1" || cm.Kind != "ConfigMap" || cm.Metadata.Name != ConfigMapName {
		return nil, fmt.Errorf("expected Argo CD's ConfigMap %s (apiVersion v1, kind ConfigMap); got %s %s %q", ConfigMapName, cm.APIVersion, cm.Kind, cm.Metadata.Name)
	}
	res := &HealthResult{}
	var custom []customization
	keys := make([]string, 0, len(cm.Data))
	for k := range cm.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	other := 0
	for _, k := range keys {
		v := cm.Data[k]
		switch {
		case strings.HasPrefix(k, healthKeyPrefix):
			group, kind := splitHealthKey(strings.TrimPrefix(k, healthKeyPrefix))
			custom = append(custom, customization{key: k, group: group, kind: kind, lua: v})
		case k == customizationsKey:
			old, warnings, err := oldCustomizations(v)
			if err != nil {
				return nil, fmt.Errorf("data[%q]: %w", k, err)
			}
			custom = append(custom, old...)
			res.Warnings = append(res.Warnings, warnings...)
		case strings.HasPrefix(k, customizationsPref):
			res.Warnings = append(res.Warnings, fmt.Sprintf("%s: not a health customisation; keyless has no equivalent to import (ignoreDifferences, actions and known types are Argo CD's)", k))
		default:
			other++
		}
	}
	if other > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%s: %d other settings are not resource customisations and were not read", ConfigMapName, other))
	}
	if len(custom) == 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%s has no Lua health customisations (resource.customizations.health.<group>_<kind>, or health.lua in resource.customizations)", ConfigMapName))
		return res, nil
	}
	var out strings.Builder
	for _, c := range custom {
		if err := c.convert(res, &out); err != nil {
			return nil, err
		}
	}
	res.Entries = []byte(out.String())
	return res, nil
}

// splitHealthKey splits <group>_<kind> at its last underscore (neither a
// group nor a kind has one); a key without one is a kind of the core group.
func splitHealthKey(s string) (group, kind string) {
	i := strings.LastIndex(s, "_")
	if i < 0 {
		return "", s
	}
	return s[:i], s[i+1:]
}

// oldCustomizations reads the resource.customizations YAML, keyed by
// "<group>/<kind>" ("<kind>" for the core group).
func oldCustomizations(v string) ([]customization, []string, error) {
	var m map[string]map[string]any
	if err := yaml.Unmarshal([]byte(v), &m); err != nil {
		return nil, nil, fmt.Errorf("not a YAML map of group/kind to customisations: %w", err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []customization
	var warnings []string
	for _, k := range keys {
		where := fmt.Sprintf("%s %q", customizationsKey, k)
		group, kind := "", k
		if i := strings.LastIndex(k, "/"); i >= 0 {
			group, kind = k[:i], k[i+1:]
		}
		for field, val := range m[k] {
			switch field {
			case "health.lua":
				lua, ok := val.(string)
				if !ok {
					return nil, nil, fmt.Errorf("%s: health.lua is not a string", where)
				}
				out = append(out, customization{key: where, group: group, kind: kind, lua: lua, fromOldBlock: true})
			case "health.lua.useOpenLibs":
			default:
				warnings = append(warnings, fmt.Sprintf("%s: %s is not a health customisation; keyless has no equivalent to import", where, field))
			}
		}
	}
	sort.Strings(warnings)
	return out, warnings, nil
}

// libraryVersions maps the library's groups and kinds to their apiVersion.
func libraryVersions() map[schema.GroupKind]string {
	out := map[schema.GroupKind]string{}
	for _, e := range celhealth.Library() {
		gv, _ := schema.ParseGroupVersion(e.APIVersion)
		out[schema.GroupKind{Group: gv.Group, Kind: e.Kind}] = e.APIVersion
	}
	return out
}

// crossplaneGroup: the groups of Crossplane providers' managed resources
// (Upbound's and the community's), judged by Ready and Synced as claims and
// composites are (celhealth.CrossplaneReadySynced); not Crossplane's own
// packages, compositions and operations, which have other conditions.
func crossplaneGroup(group string) bool {
	switch group {
	case "pkg.crossplane.io", "apiextensions.crossplane.io", "ops.crossplane.io", "protection.crossplane.io":
		return false
	}
	return strings.HasSuffix(group, ".crossplane.io") || strings.HasSuffix(group, ".upbound.io")
}

// entry is one item of the printed list, in Flux's field order (hence
// yaml.v3, which keeps a struct's order).
type entry struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind,omitempty"`
	InProgress string `yaml:"inProgress,omitempty"`
	Failed     string `yaml:"failed,omitempty"`
	Current    string `yaml:"current,omitempty"`
}

func (c customization) name() string {
	if c.group == "" {
		return c.kind
	}
	return c.group + "/" + c.kind
}

func (c customization) convert(res *HealthResult, out *strings.Builder) error {
	lib := libraryVersions()
	name := c.name()
	wildGroup := strings.Contains(c.group, "*")
	wildKind := c.kind == "*"
	switch {
	case !wildGroup && !wildKind && lib[schema.GroupKind{Group: c.group, Kind: c.kind}] != "":
		res.Notes = append(res.Notes, fmt.Sprintf("%s: %s is covered by keyless's built-in health library (entry %s %s, docs/health.md); nothing to convert",
			c.key, name, lib[schema.GroupKind{Group: c.group, Kind: c.kind}], c.kind))
		return nil
	case crossplaneGroup(strings.TrimPrefix(c.group, "*")):
		if wildGroup {
			res.Notes = append(res.Notes, fmt.Sprintf("%s: %s is Crossplane's: keyless judges claims, composites and managed resources with the library's Crossplane entry (Ready and Synced, docs/health.md), "+
				"which names one API group: add it to --health-check-exprs once per group you use (none printed: the group is a wildcard)", c.key, name))
			return nil
		}
		res.Notes = append(res.Notes, fmt.Sprintf("%s: %s is Crossplane's: converted to the library's Crossplane entry (Ready and Synced, docs/health.md)", c.key, name))
		e := entry{APIVersion: c.group + "/" + placeholderVersion, Kind: strings.TrimSuffix(c.kind, "*"),
			Failed: celhealth.CrossplaneReadySynced.Failed, Current: celhealth.CrossplaneReadySynced.Current}
		return writeEntry(out, []string{c.key + ": Crossplane's Ready and Synced (celhealth.CrossplaneReadySynced)",
			"the version is a placeholder: entries match by group and kind"}, e)
	case wildGroup:
		res.Warnings = append(res.Warnings, fmt.Sprintf("%s: %s names groups with a wildcard: a keyless entry names one API group; not converted (write one entry per group)", c.key, name))
		return nil
	}
	e := entry{APIVersion: c.group + "/" + placeholderVersion, Kind: c.kind}
	if c.group == "" {
		e.APIVersion = "v1"
	}
	if wildKind {
		e.Kind = ""
	}
	what := "kind " + c.kind
	if wildKind {
		what = "every kind of group " + c.group
	}
	exprs, how, err := recognise(c.lua)
	if err == nil {
		e.InProgress, e.Failed, e.Current = exprs.InProgress, exprs.Failed, exprs.Current
		res.Notes = append(res.Notes, fmt.Sprintf("%s: %s converted from its Lua (%s)", c.key, name, how))
		return writeEntry(out, []string{c.key + ": converted from its Lua (" + how + ") for " + what,
			"the version is a placeholder: entries match by group and kind"}, e)
	}
	res.Warnings = append(res.Warnings, fmt.Sprintf("%s: %s cannot be converted automatically (Lua is not CEL; %v): a skeleton entry with a TODO is printed, write its current and failed expressions (docs/health.md)", c.key, name, err))
	comments := []string{
		c.key + ": NOT CONVERTED (Lua is not CEL) for " + what,
		"TODO: write current (required) and failed, and inProgress if needed, in CEL (docs/health.md);",
		"the entry is refused until current is written. Argo CD's Lua was:",
	}
	for _, l := range strings.Split(strings.TrimRight(c.lua, "\n"), "\n") {
		comments = append(comments, "  "+l)
	}
	return writeEntry(out, comments, e)
}

// writeEntry writes comment lines and e as one item of a YAML list.
func writeEntry(out *strings.Builder, comments []string, e entry) error {
	for _, c := range comments {
		out.WriteString("# " + commentSafe(c) + "\n")
	}
	b, err := yamlv3.Marshal([]entry{e})
	if err != nil {
		return err
	}
	out.Write(b)
	return nil
}

// commentSafe keeps a comment on its line: YAML (1.1) also breaks lines at
// CR, NEL, LS and PS; other control characters become spaces too.
func commentSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' || (r >= ' ' && r != 0x7f && r != 0x85 && r != 0x2028 && r != 0x2029 && (r < 0x80 || r > 0x9f)) {
			return r
		}
		return ' '
	}, s)
}

// ErrNotRecognised is returned (wrapped) by recognise for Lua it cannot
// prove equal to CEL expressions.
var ErrNotRecognised = errors.New("not one of the shapes converted automatically")

// argoToStatus maps the Argo CD health statuses a conversion carries.
var argoToStatus = map[string]string{"Healthy": "current", "Degraded": "failed", "Progressing": "inProgress"}

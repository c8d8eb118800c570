package audit

import (
	"fmt"
	"os"
	"path"
	"strings"

	"sigs.k8s.io/yaml"
)

// Ignore accepts a risk: a rule, optionally limited to a path (a glob), with
// the reason it is accepted.
type Ignore struct {
	Rule   string `json:"rule"`
	Path   string `json:"path,omitempty"`
	Reason string `json:"reason"`
}

// ParseIgnore parses "RULE[:PATH]=REASON"; the reason is required.
func ParseIgnore(s string) (Ignore, error) {
	spec, reason, ok := strings.Cut(s, "=")
	if !ok || strings.TrimSpace(reason) == "" {
		return Ignore{}, fmt.Errorf("--ignore %q: give the reason the risk is accepted: RULE[:PATH]=REASON", s)
	}
	rule, p, _ := strings.Cut(spec, ":")
	ig := Ignore{Rule: rule, Path: p, Reason: strings.TrimSpace(reason)}
	return ig, ig.validate()
}

func (ig Ignore) validate() error {
	if _, ok := Rules[ig.Rule]; !ok {
		return fmt.Errorf("ignore: unknown rule %q", ig.Rule)
	}
	if strings.TrimSpace(ig.Reason) == "" {
		return fmt.Errorf("ignore %s: a reason is required", ig.Rule)
	}
	if ig.Path != "" {
		if _, err := path.Match(ig.Path, ""); err != nil {
			return fmt.Errorf("ignore %s: path %q: %w", ig.Rule, ig.Path, err)
		}
	}
	return nil
}

// LoadIgnoreFile reads a YAML list of {rule, path, reason}.
func LoadIgnoreFile(file string) ([]Ignore, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var igs []Ignore
	if err := yaml.UnmarshalStrict(data, &igs); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	for i, ig := range igs {
		if err := ig.validate(); err != nil {
			return nil, fmt.Errorf("%s: entry %d: %w", file, i, err)
		}
	}
	return igs, nil
}

// Accepted is a finding an ignore accepted, with the ignore that did.
type Accepted struct {
	Finding
	// By is the first ignore (in the order given) that matched.
	By Ignore
}

// Apply drops the findings an ignore accepts and returns them apart, each
// with the ignore that accepted it (so its reason is the right one even
// when several ignores name the same rule).
func Apply(findings []Finding, igs []Ignore) (kept []Finding, ignored []Accepted) {
	for _, f := range findings {
		if ig, ok := matchIgnore(f, igs); ok {
			ignored = append(ignored, Accepted{Finding: f, By: ig})
		} else {
			kept = append(kept, f)
		}
	}
	return kept, ignored
}

// matchIgnore returns the first ignore that accepts f.
func matchIgnore(f Finding, igs []Ignore) (Ignore, bool) {
	for _, ig := range igs {
		if ig.Rule != f.Rule {
			continue
		}
		if ig.Path == "" {
			return ig, true
		}
		if ok, _ := path.Match(ig.Path, f.File); ok || ig.Path == f.File || underDir(ig.Path, f.File) {
			return ig, true
		}
	}
	return Ignore{}, false
}

// underDir reports whether pattern is DIR/** and file is inside DIR.
func underDir(pattern, file string) bool {
	dir, ok := strings.CutSuffix(pattern, "/**")
	return ok && strings.HasPrefix(file, dir+"/")
}

package argocd

import (
	"errors"
	"fmt"
	"strings"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

// sources carries spec.source, or Argo CD's spec.sources as far as keyless
// takes it: exactly one rendered source (without ref) and Git sources with
// a ref, read for values only ($ref/path in helm.valueFiles). A
// spec.sources without ref sources becomes spec.source.
func (c *converter) sources(spec *kv1.ApplicationSpec, namespace string) error {
	v, ok := c.take("spec.sources")
	if !ok {
		m, _ := c.take("spec.source")
		src, err := c.source(toMap(m), "spec.source", namespace)
		if err != nil {
			return err
		}
		spec.Source = src
		return checkValueRefs(src, "spec.source", nil)
	}
	if _, ok := c.take("spec.source"); ok {
		c.warnf("spec.source dropped: Argo CD ignores it when spec.sources is set")
	}
	items := toSlice(v)
	if len(items) == 0 {
		return errors.New("spec.sources is empty: name one source to render")
	}
	rendered, refs := -1, map[string]bool{}
	for i, item := range items {
		if ref, _ := toMap(item)["ref"].(string); ref != "" {
			refs[ref] = true
			continue
		}
		if rendered >= 0 {
			return fmt.Errorf("spec.sources[%d] and spec.sources[%d] are both rendered (neither has a ref): keyless renders one source and reads the others (with a ref) for values only; split them into one Application per rendered source", rendered, i)
		}
		rendered = i
	}
	if rendered < 0 {
		return errors.New("spec.sources: every source has a ref, so none is rendered; keyless renders the one source without a ref")
	}
	out := make([]kv1.ApplicationSource, len(items))
	for i, item := range items {
		where := fmt.Sprintf("spec.sources[%d]", i)
		var err error
		if i == rendered {
			out[i], err = c.source(toMap(item), where, namespace)
			if err == nil {
				err = checkValueRefs(out[i], where, refs)
			}
		} else {
			out[i], err = c.refSource(toMap(item), where)
		}
		if err != nil {
			return err
		}
	}
	if len(refs) == 0 {
		spec.Source = out[rendered]
		return nil
	}
	spec.Sources = out
	return nil
}

// source converts one rendered source: a Git path (with its directory
// options) or a chart, and its Helm settings.
func (c *converter) source(m map[string]any, where, namespace string) (kv1.ApplicationSource, error) {
	s := &converter{in: m, where: where, namespace: namespace}
	src := kv1.ApplicationSource{RepoURL: s.str("repoURL"), TargetRevision: s.str("targetRevision"), Path: s.str("path")}
	if src.RepoURL == "" {
		return src, fmt.Errorf("%s is missing", s.path("repoURL"))
	}
	if err := s.chart(&src); err != nil {
		return src, err
	}
	if err := s.helm(&src); err != nil {
		return src, err
	}
	s.directory(&src)
	if src.Chart != "" && src.Directory != nil {
		return src, fmt.Errorf("%s configures a plain folder of Git, not a chart: remove it", s.path("directory"))
	}
	c.adopt(s)
	return src, nil
}

// refSource converts a source with a ref: a Git repository whose files the
// rendered source's helm.valueFiles read as $ref/path. Argo CD also renders
// a ref source that has a path or a chart; keyless renders one source.
func (c *converter) refSource(m map[string]any, where string) (kv1.ApplicationSource, error) {
	s := &converter{in: m, where: where}
	src := kv1.ApplicationSource{Ref: s.str("ref"), RepoURL: s.str("repoURL"), TargetRevision: s.str("targetRevision")}
	split := "keyless renders one source and reads ref sources for values only: split it into two Applications"
	switch {
	case src.RepoURL == "":
		return src, fmt.Errorf("%s is missing", s.path("repoURL"))
	case s.str("path") != "":
		return src, fmt.Errorf("%s has ref %q and a path, so Argo CD renders it too; %s (one renders the path, and this source keeps only repoURL, targetRevision and ref)", where, src.Ref, split)
	case s.str("chart") != "":
		return src, fmt.Errorf("%s has ref %q and a chart, so Argo CD renders it too; %s (a ref source is a Git repository)", where, src.Ref, split)
	case !isGitURL(src.RepoURL):
		return src, fmt.Errorf("%s %q: a ref source is a Git repository (https://, ssh:// or git@host:path)", s.path("repoURL"), src.RepoURL)
	}
	if _, ok := s.take("helm"); ok {
		return src, fmt.Errorf("%s has ref %q and helm settings, which apply to a rendered source only: move them to the source without a ref", where, src.Ref)
	}
	c.adopt(s)
	return src, nil
}

// adopt takes a source converter's warnings and warns about what it left.
func (c *converter) adopt(s *converter) {
	c.warnings = append(c.warnings, s.warnings...)
	for _, p := range s.leftovers(s.in, "") {
		c.warnf("%s is not supported by keyless and was dropped", s.path(p))
	}
}

// checkValueRefs refuses a $ref/path values file whose ref no source has:
// Argo CD fails on it too, and keyless would only find out at render.
func checkValueRefs(src kv1.ApplicationSource, where string, refs map[string]bool) error {
	if src.Helm == nil {
		return nil
	}
	for i, vf := range src.Helm.ValueFiles {
		rest, ok := strings.CutPrefix(vf, "$")
		if !ok {
			continue
		}
		name, _, _ := strings.Cut(rest, "/")
		if !refs[name] {
			return fmt.Errorf("%s.helm.valueFiles[%d] %q reads $%s, but no spec.sources entry has ref: %s", where, i, vf, name, name)
		}
	}
	return nil
}

// isGitURL reports whether u is a Git URL keyless clones: https://,
// http://, ssh:// or scp-like user@host:path.
func isGitURL(u string) bool {
	for _, p := range []string{"https://", "http://", "ssh://"} {
		if strings.HasPrefix(u, p) {
			return true
		}
	}
	at, colon := strings.Index(u, "@"), strings.Index(u, ":")
	return !strings.Contains(u, "://") && at > 0 && colon > at
}

func toMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	if m == nil {
		return map[string]any{}
	}
	return m
}

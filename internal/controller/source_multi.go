package controller

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/keyless-cd/keyless/internal/readset"
)

// multiSource is spec.sources: the rendered source, and Git sources whose
// files its helm.valueFiles read as $ref/path. Its revision is the rendered
// source's followed by ",ref=SHA" for each values source, so a commit to
// either is a new revision and history records both.
type multiSource struct {
	primary openSource
	refs    []*gitSource
}

func (m *multiSource) reason() string { return m.primary.reason() }

func (m *multiSource) resolve(ctx context.Context, maxAge time.Duration) (string, error) {
	rev, err := m.primary.resolve(ctx, maxAge)
	if err != nil {
		return "", err
	}
	parts := []string{rev}
	for _, g := range m.refs {
		sha, err := g.resolve(ctx, maxAge)
		if err != nil {
			return "", fmt.Errorf("values source %s: %w", g.src.Ref, err)
		}
		parts = append(parts, g.src.Ref+"="+sha)
	}
	return strings.Join(parts, ","), nil
}

// split is revision's rendered part and each values source's SHA.
func (m *multiSource) split(revision string) (string, map[string]string, error) {
	parts := strings.Split(revision, ",")
	shas := map[string]string{}
	for _, p := range parts[1:] {
		ref, sha, ok := strings.Cut(p, "=")
		if !ok {
			return "", nil, fmt.Errorf("revision %q: %q is not ref=SHA", revision, p)
		}
		shas[ref] = sha
	}
	for _, g := range m.refs {
		if shas[g.src.Ref] == "" {
			return "", nil, fmt.Errorf("revision %q has no commit of values source %s", revision, g.src.Ref)
		}
	}
	return parts[0], shas, nil
}

func (m *multiSource) fetch(ctx context.Context, revision string) (*provenance, error) {
	rev, shas, err := m.split(revision)
	if err != nil {
		return nil, err
	}
	prov, err := m.primary.fetch(ctx, rev)
	if err != nil {
		return nil, err
	}
	for _, g := range m.refs {
		vp, err := g.fetch(ctx, shas[g.src.Ref])
		if err != nil {
			return nil, fmt.Errorf("values source %s: %w", g.src.Ref, err)
		}
		if prov.Author == "" {
			// A chart names no person: the values commit's author does.
			prov.Author, prov.Committer = vp.Author, vp.Committer
		}
		prov.Message += "; " + g.src.Ref + ": " + vp.Message
	}
	return prov, nil
}

func (m *multiSource) checkout(ctx context.Context, revision string) (*checkout, error) {
	rev, shas, err := m.split(revision)
	if err != nil {
		return nil, err
	}
	co, err := m.primary.checkout(ctx, rev)
	if err != nil {
		return nil, err
	}
	releases := []func(){co.Release}
	co.Release = func() {
		for _, r := range releases {
			r()
		}
	}
	co.RefRoots = map[string]string{}
	for _, g := range m.refs {
		ref, err := g.checkout(ctx, shas[g.src.Ref])
		if err != nil {
			co.Release()
			return nil, fmt.Errorf("values source %s: %w", g.src.Ref, err)
		}
		releases = append(releases, ref.Release)
		co.RefRoots[g.src.Ref] = ref.Root
	}
	return co, nil
}

func (*multiSource) inputValues(string, []readset.Input) ([]string, error) {
	return nil, fmt.Errorf("values files come from other sources: %w", readset.ErrNotKeyable)
}

func (*multiSource) inputValuesOf(string, map[string][]readset.Input) (map[string][]string, error) {
	return nil, fmt.Errorf("values files come from other sources: %w", readset.ErrNotKeyable)
}

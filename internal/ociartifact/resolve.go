package ociartifact

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"
)

// DefaultTag is what an empty target resolves: Flux's default too.
const DefaultTag = "latest"

// Resolve pins target in repo: a tag, a semver range (the highest tag in
// it; tags may start with v), or a digest sha256:…; "" is DefaultTag. The
// manifest is read (bounded, checked against its digest) for its
// annotations, and must be an artifact (a ContentMediaType layer).
func Resolve(ctx context.Context, repo *remote.Repository, target string, limits Limits) (Resolved, error) {
	limits = limits.WithDefaults()
	where := repo.Reference.String()
	if target == "" {
		target = DefaultTag
	}
	tag := target
	switch {
	case IsDigest(target):
		tag = ""
	case IsRange(target):
		var err error
		if tag, err = highestTag(ctx, repo, target, limits.MaxTags); err != nil {
			return Resolved{}, err
		}
	case !ValidTarget(target):
		return Resolved{}, fmt.Errorf("%s: %q is not a tag, a semver range or a sha256 digest", where, target)
	}
	ref := tag
	if ref == "" {
		ref = target
	}
	desc, err := repo.Resolve(ctx, ref)
	if err != nil {
		return Resolved{}, fmt.Errorf("%s: resolving %s: %w", where, ref, notFound(err))
	}
	m, err := fetchManifest(ctx, repo, desc.Digest.String(), limits)
	if err != nil {
		return Resolved{}, err
	}
	return Resolved{Tag: tag, Digest: desc.Digest.String(), Size: desc.Size, Annotations: m.Annotations}, nil
}

// wildcardRE finds an x, X or * version element: "1.x", "1.2.*".
var wildcardRE = regexp.MustCompile(`(^|\.)[xX*](\.|$)`)

// IsRange reports whether target is read as a semver range rather than a
// tag: it parses as a constraint and uses an operator (^ ~ < > = ||, a
// comma or space) or a wildcard element (1.x, 1.2.*), and names a
// version number (or is "*"). "1.2.3", "v1", "x" and "latest" are tags.
func IsRange(target string) bool {
	if target == "*" {
		return true
	}
	if _, err := semver.NewConstraint(target); err != nil || !strings.ContainsAny(target, "0123456789") {
		return false
	}
	return strings.ContainsAny(target, "^~<>=|, ") || wildcardRE.MatchString(target)
}

// highestTag is the highest semver tag of repo within rng (at most maxTags
// tags read).
func highestTag(ctx context.Context, repo *remote.Repository, rng string, maxTags int) (string, error) {
	c, err := semver.NewConstraint(rng)
	if err != nil {
		return "", fmt.Errorf("%s: range %q: %w", repo.Reference.String(), rng, err)
	}
	type tv struct {
		tag string
		v   *semver.Version
	}
	var found []tv
	n := 0
	err = repo.Tags(ctx, "", func(tags []string) error {
		for _, t := range tags {
			if n++; n > maxTags {
				return &LimitError{Limit: "MaxTags", Where: repo.Reference.String(), Detail: fmt.Sprintf("the repository has more than %d tags", maxTags)}
			}
			if v, err := semver.NewVersion(t); err == nil && c.Check(v) {
				found = append(found, tv{t, v})
			}
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("%s: listing the tags: %w", repo.Reference.String(), err)
	}
	if len(found) == 0 {
		return "", fmt.Errorf("%s: no tag in range %q (%d tags): %w", repo.Reference.String(), rng, n, ErrNotFound)
	}
	sort.SliceStable(found, func(i, j int) bool { return found[i].v.GreaterThan(found[j].v) })
	return found[0].tag, nil
}

// notFound marks a registry's 404 as ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, errdef.ErrNotFound) {
		return fmt.Errorf("%w (%w)", ErrNotFound, err)
	}
	return err
}

// ValidTarget reports whether target can be resolved: "" (DefaultTag), a
// tag, a semver range or a digest.
func ValidTarget(target string) bool {
	return target == "" || IsDigest(target) || IsRange(target) || tagRE.MatchString(target)
}

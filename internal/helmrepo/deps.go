package helmrepo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/Masterminds/semver/v3"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/provenance"
	"sigs.k8s.io/yaml"
)

// DependencyResult is what Dependencies fetched for a chart.
type DependencyResult struct {
	// Archives are the .tgz files (in the cache, read-only by convention)
	// to add as the chart's dependencies, in Chart.yaml's order.
	Archives []string
	// Resolved pins each archive (same order).
	Resolved []Resolved
	// Warnings for the Application's status: an unpinned build, and so on.
	Warnings []string
}

// maxChartFileBytes bounds Chart.yaml, Chart.lock, requirements.yaml and
// requirements.lock.
const maxChartFileBytes = 1 << 20

// Dependencies fetches the dependencies of the chart in chartDir (a folder
// of a checkout) as `helm dependency build` would: the versions of
// Chart.lock (requirements.lock for apiVersion v1) when there is one —
// refused with ErrOutOfSync when its digest does not match Chart.yaml's
// dependencies — or else each dependency's range resolved against its
// repository, with a warning that the build is not pinned. Skipped, and
// not returned: dependencies without a repository or with a file://
// repository (the renderer reads them from the checkout) and dependencies
// vendored under charts/ (a folder charts/<name>, or charts/<name>-<version>.tgz
// with a version in range). A repository named by @name or alias:name is
// refused (ErrUnsupported): keyless has no repositories.yaml. creds
// returns the credential for a repository URL (nil: anonymous; may be nil).
func (f *Fetcher) Dependencies(ctx context.Context, chartDir string, creds func(repoURL string) *Credentials) (*DependencyResult, error) {
	ctx, cancel := f.withTimeout(ctx)
	defer cancel()
	root, err := os.OpenRoot(chartDir)
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w", chartDir, err)
	}
	defer func() { _ = root.Close() }()
	chartYAML, err := readBounded(root, "Chart.yaml")
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w", chartDir, err)
	}
	meta, err := parseChartYAML(chartYAML)
	if err != nil {
		return nil, fmt.Errorf("chart %s: Chart.yaml: %w", chartDir, err)
	}
	reqFile, lockFile := "Chart.yaml", "Chart.lock"
	if meta.APIVersion == chart.APIVersionV1 {
		reqFile, lockFile = "requirements.yaml", "requirements.lock"
		if meta.Dependencies, err = readV1Requirements(root); err != nil {
			return nil, fmt.Errorf("chart %s: requirements.yaml: %w", chartDir, err)
		}
	}
	name := meta.Name
	if name == "" {
		name = chartDir
	}
	if len(meta.Dependencies) > f.opts.Limits.MaxDependencies {
		return nil, &LimitError{Limit: "MaxDependencies", Where: "chart " + name, Detail: fmt.Sprintf("more than %d dependencies", f.opts.Limits.MaxDependencies)}
	}
	if len(meta.Dependencies) == 0 {
		return &DependencyResult{}, nil
	}
	lockData, err := readBounded(root, lockFile)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("chart %s: %w", name, err)
	}
	deps, err := pinnedDependencies(name, meta, lockData, reqFile, lockFile)
	if err != nil {
		return nil, err
	}
	res := &DependencyResult{}
	seen := map[string]bool{}
	var unpinned []string
	for _, d := range deps {
		if d.Repository == "" || strings.HasPrefix(d.Repository, "file://") || vendored(root, d) {
			continue
		}
		var c *Credentials
		if creds != nil {
			c = creds(d.Repository)
		}
		r, err := f.Resolve(ctx, ChartRef{RepoURL: d.Repository, Chart: d.Name, Version: d.Version}, c)
		if err != nil {
			return nil, fmt.Errorf("chart %s: dependency %s: %w", name, d.Name, err)
		}
		if seen[r.Digest] {
			continue
		}
		seen[r.Digest] = true
		path, err := f.Fetch(ctx, r, c)
		if err != nil {
			return nil, fmt.Errorf("chart %s: dependency %s: %w", name, d.Name, err)
		}
		res.Archives = append(res.Archives, path)
		res.Resolved = append(res.Resolved, r)
		if lockData == nil {
			unpinned = append(unpinned, fmt.Sprintf("%s %s (%s)", r.Chart, r.Version, d.Version))
		}
	}
	if len(unpinned) > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("chart %s has no %s: dependencies resolved from version ranges to %s; the build is not pinned: commit a %s (`helm dependency update`)",
			name, lockFile, strings.Join(unpinned, ", "), lockFile))
	}
	return res, nil
}

// pinnedDependencies returns the dependencies to fetch: the lock's when
// there is one (its digest checked as `helm dependency build` does), else
// Chart.yaml's ranges.
func pinnedDependencies(name string, meta *chart.Metadata, lockData []byte, reqFile, lockFile string) ([]*chart.Dependency, error) {
	for _, d := range meta.Dependencies {
		if strings.HasPrefix(d.Repository, "@") || strings.HasPrefix(d.Repository, "alias:") {
			return nil, fmt.Errorf("chart %s: dependency %s: repository %q is a Helm repository name (from a repositories.yaml keyless does not have); write the repository's URL (https://… or oci://…) in %s: %w",
				name, d.Name, d.Repository, reqFile, ErrUnsupported)
		}
	}
	if lockData == nil {
		return meta.Dependencies, nil
	}
	lock, err := parseLock(lockData)
	if err != nil {
		return nil, fmt.Errorf("chart %s: %s: %w", name, lockFile, err)
	}
	if !lockMatches(meta, lock) {
		return nil, fmt.Errorf("chart %s: %s is out of sync with %s (its digest does not match the dependencies): run `helm dependency update` and commit %s: %w",
			name, lockFile, reqFile, lockFile, ErrOutOfSync)
	}
	return lock.Dependencies, nil
}

// lockMatches is `helm dependency build`'s check of a lock's digest
// (internal/resolver.HashReq, and HashV2Req for apiVersion v1 locks made
// by Helm 2).
func lockMatches(meta *chart.Metadata, lock *chart.Lock) bool {
	if sum, err := hashJSON([2][]*chart.Dependency{meta.Dependencies, lock.Dependencies}); err == nil && sum == lock.Digest {
		return true
	}
	if meta.APIVersion == chart.APIVersionV1 {
		sum, err := hashJSON(map[string][]*chart.Dependency{"dependencies": meta.Dependencies})
		return err == nil && sum == lock.Digest
	}
	return false
}

func hashJSON(v any) (string, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	s, err := provenance.Digest(bytes.NewBuffer(data))
	return "sha256:" + s, err
}

// parseChartYAML reads the fields of Chart.yaml Dependencies needs, as
// Helm's loader does (sigs.k8s.io/yaml into chart.Metadata).
func parseChartYAML(data []byte) (*chart.Metadata, error) {
	meta := &chart.Metadata{}
	if err := yaml.Unmarshal(data, meta); err != nil {
		return nil, err
	}
	if meta.APIVersion == "" {
		meta.APIVersion = chart.APIVersionV1
	}
	return meta, validDependencies(meta.Dependencies)
}

// parseLock reads a Chart.lock (requirements.lock).
func parseLock(data []byte) (*chart.Lock, error) {
	lock := &chart.Lock{}
	if err := yaml.Unmarshal(data, lock); err != nil {
		return nil, err
	}
	return lock, validDependencies(lock.Dependencies)
}

func validDependencies(deps []*chart.Dependency) error {
	for i, d := range deps {
		if d == nil {
			return fmt.Errorf("dependency %d is empty", i)
		}
		if !validChartName(d.Name) {
			return fmt.Errorf("dependency %d: %q is not a chart name", i, d.Name)
		}
	}
	return nil
}

// readV1Requirements reads an apiVersion v1 chart's requirements.yaml.
func readV1Requirements(root *os.Root) ([]*chart.Dependency, error) {
	data, err := readBounded(root, "requirements.yaml")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var req struct {
		Dependencies []*chart.Dependency `json:"dependencies"`
	}
	if err := yaml.Unmarshal(data, &req); err != nil {
		return nil, err
	}
	return req.Dependencies, validDependencies(req.Dependencies)
}

// readBounded reads name inside root, at most maxChartFileBytes.
func readBounded(root *os.Root, name string) ([]byte, error) {
	fh, err := root.Open(name)
	if err != nil {
		return nil, err
	}
	defer func() { _ = fh.Close() }()
	data, err := io.ReadAll(io.LimitReader(fh, maxChartFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(data) > maxChartFileBytes {
		return nil, &LimitError{Limit: "1 MiB", Where: name, Detail: "the file is too large"}
	}
	return data, nil
}

// vendored reports whether d is already in charts/: a folder charts/<name>
// with a Chart.yaml, or an archive charts/<name>-<version>.tgz whose
// version satisfies d's.
func vendored(root *os.Root, d *chart.Dependency) bool {
	if fi, err := root.Stat("charts/" + d.Name + "/Chart.yaml"); err == nil && fi.Mode().IsRegular() {
		return true
	}
	dir, err := root.Open("charts")
	if err != nil {
		return false
	}
	defer func() { _ = dir.Close() }()
	names, err := dir.Readdirnames(10000)
	if err != nil && len(names) == 0 {
		return false
	}
	constraint, err := semver.NewConstraint(d.Version)
	if err != nil {
		return false
	}
	for _, n := range names {
		v, ok := strings.CutPrefix(n, d.Name+"-")
		if !ok || !strings.HasSuffix(v, ".tgz") {
			continue
		}
		if sv, err := semver.NewVersion(strings.TrimSuffix(v, ".tgz")); err == nil && constraint.Check(sv) {
			return true
		}
	}
	return false
}

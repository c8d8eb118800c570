package render

import (
	"fmt"
	"strings"

	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"

	"github.com/keyless-cd/keyless/internal/confine"
	"github.com/keyless-cd/keyless/internal/readset"
)

// addDependencies adds to chrt the dependencies Chart.yaml lists that are
// not vendored under charts/, as `helm dependency build` would have put
// them there: file:// ones from their folder inside the root (checked like
// the chart itself), the others from the archives the controller fetched
// (opts.Helm.Dependencies). What is still missing is reported by Helm's
// dependency check afterwards.
func addDependencies(root, dir string, chrt *chartv2.Chart, opts Options) error {
	rel := confine.Rel(root, dir)
	have := map[string]bool{}
	for _, d := range chrt.Dependencies() {
		have[d.Name()] = true
	}
	for _, d := range chrt.Metadata.Dependencies {
		if d == nil || have[d.Name] {
			continue
		}
		local, ok := strings.CutPrefix(d.Repository, "file://")
		if !ok {
			continue
		}
		path, err := joinNoted(root, dir, local)
		if err != nil {
			return fmt.Errorf("chart %s: dependency %s (%s): %w", rel, d.Name, d.Repository, err)
		}
		if err := checkChartFiles(root, path, opts.Limits); err != nil {
			return err
		}
		note(path, readset.Tree)
		dep, err := loader.LoadDir(path)
		if err != nil {
			return fmt.Errorf("chart %s: loading dependency %s from %s: %w", rel, d.Name, confine.Rel(root, path), err)
		}
		chrt.AddDependency(dep)
		have[dep.Name()] = true
	}
	for _, archive := range opts.Helm.Dependencies {
		fi, err := statNoted(archive)
		if err != nil {
			return fmt.Errorf("chart %s: dependency archive: %w", rel, err)
		}
		if fi.Size() > opts.Limits.MaxFileBytes {
			return fileTooLarge("dependency archive "+archive, fi.Size(), opts.Limits.MaxFileBytes)
		}
		note(archive, readset.File)
		dep, err := loader.LoadFile(archive)
		if err != nil {
			return fmt.Errorf("chart %s: loading a fetched dependency: %w", rel, err)
		}
		if have[dep.Name()] {
			continue
		}
		chrt.AddDependency(dep)
		have[dep.Name()] = true
	}
	return nil
}

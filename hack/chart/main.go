// Command chart writes the Helm chart charts/keyless and the kustomize base
// config/kustomize (and config/install/monitoring's PrometheusRule, from
// examples/prometheus/keyless-alerts.yaml), generated from the objects `keyless install --export`
// prints (internal/install: GenerateChart, GenerateKustomize), so the three
// install the same objects. make chart runs it; TestChartAndBase fails when
// they are not up to date.
//
//	go run ./hack/chart                    # the kustomize base's image tagged v0.0.0
//	go run ./hack/chart --version v1.2.3   # a release's
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/keyless-cd/keyless/internal/install"
)

func main() {
	root := flag.String("root", ".", "the repository's root")
	version := flag.String("version", "v"+install.ChartPlaceholderVersion, "the version the kustomize base's image is tagged with")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM) //nolint:forbidigo // the process entry point
	defer stop()
	if err := run(ctx, *root, *version); err != nil {
		fmt.Fprintln(os.Stderr, "chart:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, root, version string) error {
	// First the PrometheusRule: the chart and the base render it.
	alerts, err := os.ReadFile(filepath.Join(root, install.AlertsFile))
	if err != nil {
		return err
	}
	rule, err := install.GeneratePrometheusRule(alerts)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(root, install.PrometheusRuleFile), rule, 0o644); err != nil {
		return err
	}
	chart, err := install.GenerateChart(ctx)
	if err != nil {
		return err
	}
	base, err := install.GenerateKustomize(ctx, version)
	if err != nil {
		return err
	}
	for dir, files := range map[string]map[string][]byte{install.ChartDir: chart, install.KustomizeDir: base} {
		dir = filepath.Join(root, filepath.FromSlash(dir))
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		for p, data := range files {
			target := filepath.Join(dir, filepath.FromSlash(p))
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(target, data, 0o644); err != nil {
				return err
			}
		}
		fmt.Printf("wrote %s (%d files)\n", dir, len(files))
	}
	return nil
}

package controller

import (
	"context"
	"path/filepath"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/gitsource"
	"github.com/keyless-cd/keyless/internal/helmrepo"
)

// cacheGC deletes, every interval, the Git cache of repositories no
// Application reads any more (deleted Applications, changed repoURLs, and
// repositories cached by an earlier run). It needs no leadership: every
// replica has its own cache.
type cacheGC struct {
	client   client.Reader
	source   *gitsource.Source
	interval time.Duration
	// charts and chartDir are the chart cache (archives, unpacked charts):
	// what no Application's revision names and nothing used within an
	// interval is deleted. nil: none.
	charts   *helmrepo.Fetcher
	chartDir string
}

func (g *cacheGC) NeedLeaderElection() bool { return false }

func (g *cacheGC) Start(ctx context.Context) error {
	t := time.NewTicker(g.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			g.collect(ctx)
		}
	}
}

func (g *cacheGC) collect(ctx context.Context) {
	logger := log.FromContext(ctx).WithName("git-cache")
	var apps kv1.ApplicationList
	if err := g.client.List(ctx, &apps); err != nil {
		logger.Error(err, "listing Applications; the Git cache is not collected this time")
		return
	}
	urls := make([]string, 0, len(apps.Items))
	digests := map[string]bool{}
	for _, a := range apps.Items {
		urls = append(urls, a.Spec.Source.RepoURL)
		for _, src := range a.Spec.Sources {
			urls = append(urls, src.RepoURL)
		}
		chartDigests(&a, digests)
	}
	g.collectCharts(ctx, digests)
	// A repository used within one interval is kept even if no listed
	// Application names it: the list may predate a new Application.
	n, err := g.source.Retain(urls, g.interval)
	if err != nil {
		logger.Error(err, "collecting the Git cache")
	}
	if n > 0 {
		logger.Info("deleted the cache of repositories no Application reads", "repositories", n)
	}
}

// collectCharts deletes the charts no Application's revision names and
// nothing used within an interval (dependencies are named by no revision:
// every render touches them).
func (g *cacheGC) collectCharts(ctx context.Context, keep map[string]bool) {
	if g.charts == nil {
		return
	}
	logger := log.FromContext(ctx).WithName("chart-cache")
	archives, err := g.charts.Retain(keep, g.interval)
	if err != nil {
		logger.Error(err, "collecting the chart archives")
	}
	unpacked, err := retainCharts(filepath.Join(g.chartDir, "expanded"), keep, g.interval)
	if err != nil {
		logger.Error(err, "collecting the unpacked charts")
	}
	artifacts, err := retainCharts(filepath.Join(g.chartDir, artifactsDir), keep, g.interval)
	if err != nil {
		logger.Error(err, "collecting the unpacked artifacts")
	}
	if archives+unpacked+artifacts > 0 {
		logger.Info("deleted charts and artifacts no Application uses", "archives", archives, "unpacked", unpacked, "artifacts", artifacts)
	}
}

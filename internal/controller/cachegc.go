package controller

import (
	"context"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/gitsource"
)

// cacheGC deletes, every interval, the Git cache of repositories no
// Application reads any more (deleted Applications, changed repoURLs, and
// repositories cached by an earlier run). It needs no leadership: every
// replica has its own cache.
type cacheGC struct {
	client   client.Reader
	source   *gitsource.Source
	interval time.Duration
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
	for _, a := range apps.Items {
		urls = append(urls, a.Spec.Source.RepoURL)
	}
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

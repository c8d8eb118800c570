package controller

import (
	"context"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/gitsource"
)

// gitSource is an Application's Git repository, read through the shared
// cache with the Application's own credential.
type gitSource struct {
	r    *ApplicationReconciler
	app  *kv1.Application
	auth transport.AuthMethod
	// resolved is the last resolve's answer: its ref is what a fetch of
	// that commit asks for (a bare SHA needs a server that allows it).
	resolved gitsource.Revision
}

func (g *gitSource) reason() string { return ReasonGitFailed }

func (g *gitSource) resolve(ctx context.Context, maxAge time.Duration) (string, error) {
	src := g.app.Spec.Source
	rev, err := g.r.source.ResolveWithin(ctx, src.RepoURL, src.TargetRevision, g.auth, maxAge)
	g.resolved = rev
	return rev.SHA, err
}

func (g *gitSource) fetch(ctx context.Context, sha string) (*provenance, error) {
	url := g.app.Spec.Source.RepoURL
	rev := g.resolved
	if rev.SHA != sha {
		// A revert to the last applied commit: after a restart the fresh
		// cache may not hold it yet.
		rev = gitsource.Revision{SHA: sha}
	}
	if err := g.r.source.Fetch(ctx, url, rev, g.auth); err != nil {
		return nil, err
	}
	commit, err := g.r.source.CommitInfo(url, sha)
	if err != nil {
		return nil, err
	}
	return &provenance{Author: commit.Author, Committer: commit.Committer, Message: commit.Message, commit: commit}, nil
}

func (g *gitSource) checkout(ctx context.Context, sha string) (string, string, func(), error) {
	dir, release, err := g.r.source.Checkout(ctx, g.app.Spec.Source.RepoURL, sha)
	return dir, g.app.Spec.Source.Path, release, err
}

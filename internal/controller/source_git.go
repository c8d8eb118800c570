package controller

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/credential"
	"github.com/keyless-cd/keyless/internal/gitsource"
	"github.com/keyless-cd/keyless/internal/readset"
)

// gitSource is a Git repository, read through the shared cache with the
// Application's own credential for it.
type gitSource struct {
	r    *ApplicationReconciler
	src  kv1.ApplicationSource
	auth transport.AuthMethod
	// resolved is the last resolve's answer: its ref is what a fetch of
	// that commit asks for (a bare SHA needs a server that allows it).
	resolved gitsource.Revision
}

// gitAuth reads the Git credential Secret of src (field names it in
// errors), if any.
func (r *ApplicationReconciler) gitAuth(ctx context.Context, app *kv1.Application, src kv1.ApplicationSource, field string) (transport.AuthMethod, error) {
	if err := credential.CheckEmbedded(src.RepoURL, r.allowInsecureHTTP); err != nil {
		return nil, err
	}
	ref := src.SecretRef
	if ref == nil {
		return nil, nil
	}
	s, err := credential.Get(ctx, r.apiReader, app.Namespace, ref.Name, credential.Git, field+".secretRef", src.RepoURL, r.allowInsecureHTTP)
	if err != nil {
		return nil, err
	}
	auth, err := gitsource.AuthFromSecret(src.RepoURL, s.Data)
	if err != nil {
		return nil, fmt.Errorf("git secret %s/%s: %w", app.Namespace, ref.Name, err)
	}
	return auth, nil
}

func (g *gitSource) reason() string { return ReasonGitFailed }

func (g *gitSource) resolve(ctx context.Context, maxAge time.Duration) (string, error) {
	rev, err := g.r.source.ResolveWithin(ctx, g.src.RepoURL, g.src.TargetRevision, g.auth, maxAge)
	g.resolved = rev
	return rev.SHA, err
}

func (g *gitSource) fetch(ctx context.Context, sha string) (*provenance, error) {
	rev := g.resolved
	if rev.SHA != sha {
		// A revert to the last applied commit: after a restart the fresh
		// cache may not hold it yet.
		rev = gitsource.Revision{SHA: sha}
	}
	if err := g.r.source.Fetch(ctx, g.src.RepoURL, rev, g.auth); err != nil {
		return nil, err
	}
	commit, err := g.r.source.CommitInfo(g.src.RepoURL, sha)
	if err != nil {
		return nil, err
	}
	branch, _ := strings.CutPrefix(g.resolved.Ref, "refs/heads/")
	if branch == g.resolved.Ref {
		branch = "" // a tag or a SHA: merged into any branch
	}
	return &provenance{Author: commit.Author, Committer: commit.Committer, Message: commit.Message, commit: commit, branch: branch}, nil
}

func (g *gitSource) checkout(ctx context.Context, sha string) (*checkout, error) {
	dir, release, err := g.r.source.Checkout(ctx, g.src.RepoURL, sha)
	if err != nil {
		return nil, err
	}
	return &checkout{Root: dir, Path: g.src.Path, Release: release}, nil
}

func (g *gitSource) inputValues(sha string, inputs []readset.Input) ([]string, error) {
	return g.r.source.InputValues(g.src.RepoURL, sha, inputs)
}

func (g *gitSource) inputValuesOf(sha string, sets map[string][]readset.Input) (map[string][]string, error) {
	return g.r.source.InputValuesOf(g.src.RepoURL, sha, sets)
}

package controller

import (
	"context"
	"time"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/gitsource"
)

// openSource is an Application's source opened for one reconcile, its
// credential read and checked: a Git repository (gitSource) or a chart in a
// Helm repository or OCI registry (chartSource). The reconciler does not
// branch on the kind: it resolves a revision, fetches it, and renders a
// read-only checkout of it.
type openSource interface {
	// reason is the condition reason of this source's failures.
	reason() string
	// resolve pins the target revision: a commit SHA, or a chart's
	// version@sha256:digest. maxAge lets a steady-state pass reuse a
	// recent answer (0: ask the server).
	resolve(ctx context.Context, maxAge time.Duration) (string, error)
	// fetch brings revision here (pinned: a digest is verified) and says
	// where it came from.
	fetch(ctx context.Context, revision string) (*provenance, error)
	// checkout is revision as a read-only folder and the path to render
	// inside it; release ends the use.
	checkout(ctx context.Context, revision string) (root, path string, release func(), err error)
}

// provenance is what a source says of a revision, for history, Events and
// the audit line.
type provenance struct {
	Author, Committer, Message string
	// commit is the Git commit, for signature verification (nil for a chart).
	commit *gitsource.Commit
}

// open opens app's source: its credential is read and checked for the
// source's host.
func (r *ApplicationReconciler) open(ctx context.Context, app *kv1.Application) (openSource, error) {
	if app.Spec.Source.Chart != "" {
		return r.openChart(ctx, app)
	}
	auth, err := r.gitAuth(ctx, app)
	if err != nil {
		return nil, err
	}
	return &gitSource{r: r, app: app, auth: auth}, nil
}

// invalidate makes the next resolve of app's source ask its server (an
// explicit sync request).
func (r *ApplicationReconciler) invalidate(app *kv1.Application) {
	if app.Spec.Source.Chart != "" {
		if r.charts != nil {
			r.charts.Invalidate(app.Spec.Source.RepoURL)
		}
		return
	}
	r.source.Invalidate(app.Spec.Source.RepoURL)
}

// sourceReason is the condition reason of a failure of app's source before
// it could be opened.
func sourceReason(app *kv1.Application) string {
	if app.Spec.Source.Chart != "" {
		return ReasonChartFailed
	}
	return ReasonGitFailed
}

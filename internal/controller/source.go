package controller

import (
	"context"
	"time"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/gitsource"
	"github.com/keyless-cd/keyless/internal/readset"
)

// openSource is an Application's source opened for one reconcile, its
// credential read and checked: a Git repository (gitSource), a chart in a
// Helm repository or OCI registry (chartSource), or one of those with Git
// sources of values beside it (multiSource). The reconciler does not branch
// on the kind: it resolves a revision, fetches it, and renders a read-only
// checkout of it. Kinds: a Git repository (gitSource), a chart
// (chartSource), a folder in an OCI artifact (artifactSource), spec.sources
// (multiSource).
type openSource interface {
	// reason is the condition reason of this source's failures.
	reason() string
	// resolve pins the target revision: a commit SHA, a chart's
	// version@sha256:digest, or for spec.sources the rendered source's
	// followed by ",ref=SHA" for each values source. maxAge lets a
	// steady-state pass reuse a recent answer (0: ask the server).
	resolve(ctx context.Context, maxAge time.Duration) (string, error)
	// fetch brings revision here (pinned: a digest is verified) and says
	// where it came from.
	fetch(ctx context.Context, revision string) (*provenance, error)
	// checkout is revision as read-only folders.
	checkout(ctx context.Context, revision string) (*checkout, error)
	// inputValues are the values of a render's inputs at revision, from
	// the source's objects alone (readset.Values), or an error wrapping
	// readset.ErrNotKeyable when the source cannot say (a chart: its
	// version is its key; spec.sources: values come from other checkouts).
	inputValues(revision string, inputs []readset.Input) ([]string, error)
	// inputValuesOf is inputValues for many input sets at once (keyed by
	// the caller; a set that cannot be valued is left out).
	inputValuesOf(revision string, sets map[string][]readset.Input) (map[string][]string, error)
}

// checkout is what a render reads: Path inside Root, and the values
// sources' folders by ref. Release ends the use.
type checkout struct {
	Root, Path string
	RefRoots   map[string]string
	Release    func()
}

// provenance is what a source says of a revision, for history, Events and
// the audit line.
type provenance struct {
	Author, Committer, Message string
	// commit is the Git commit, for signature verification (nil for a chart).
	commit *gitsource.Commit
	// signer is the signer a source verified itself (an OCI artifact's
	// key or pipeline), for history.
	signer string
	// branch is the branch the Git revision was resolved from ("" for a
	// tag or a SHA), for spec.source.verify.approvals.
	branch string
}

// open opens app's source (spec.source, or spec.sources made into it by
// UseRenderedSource): each credential is read and checked for its host.
func (r *ApplicationReconciler) open(ctx context.Context, app *kv1.Application) (openSource, error) {
	primary, err := r.openOne(ctx, app, app.Spec.Source, "spec.source")
	if err != nil {
		return nil, err
	}
	refs := app.Spec.RefSources()
	if len(refs) == 0 {
		return primary, nil
	}
	m := &multiSource{primary: primary}
	for _, src := range refs {
		auth, err := r.gitAuth(ctx, app, src, "spec.sources[ref="+src.Ref+"]")
		if err != nil {
			return nil, err
		}
		m.refs = append(m.refs, &gitSource{r: r, src: src, auth: auth})
	}
	return m, nil
}

func (r *ApplicationReconciler) openOne(ctx context.Context, app *kv1.Application, src kv1.ApplicationSource, field string) (openSource, error) {
	switch {
	case src.Chart != "":
		return r.openChart(ctx, app, src, field)
	case src.IsArtifact():
		return r.openArtifact(ctx, app, src, field)
	}
	auth, err := r.gitAuth(ctx, app, src, field)
	if err != nil {
		return nil, err
	}
	return &gitSource{r: r, src: src, auth: auth}, nil
}

// invalidate makes the next resolve of app's sources ask their servers (an
// explicit sync request).
func (r *ApplicationReconciler) invalidate(app *kv1.Application) {
	for _, src := range append([]kv1.ApplicationSource{app.Spec.Source}, app.Spec.RefSources()...) {
		switch {
		case src.Chart != "" && r.charts != nil:
			r.charts.Invalidate(src.RepoURL)
		case src.Chart == "" && !src.IsArtifact():
			r.source.Invalidate(src.RepoURL)
		}
	}
}

// sourceReason is the condition reason of a failure of app's source before
// it could be opened.
func sourceReason(app *kv1.Application) string {
	switch {
	case app.Spec.Source.Chart != "":
		return ReasonChartFailed
	case app.Spec.Source.IsArtifact():
		return ReasonArtifactFailed
	}
	return ReasonGitFailed
}

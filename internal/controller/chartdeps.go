package controller

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/confine"
	"github.com/keyless-cd/keyless/internal/helmrepo"
	"github.com/keyless-cd/keyless/internal/render"
)

// chartDependencies fetches, for a chart at path in the checkout dir, the
// dependencies Chart.yaml lists that are not vendored under charts/ (from
// Chart.lock's versions, or resolved from their ranges with a warning), as
// `helm dependency build` would, and returns their verified archives for the
// render child, which never touches the network. A folder that is not a
// chart needs none. creds (repositoryCredentials) gives each repository
// the credential bound to its host, or none.
func (r *ApplicationReconciler) chartDependencies(ctx context.Context, app *kv1.Application, dir, path string, creds func(string) *helmrepo.Credentials) ([]string, error) {
	if r.charts == nil {
		return nil, nil
	}
	chartDir, err := confine.Join(dir, dir, path)
	if err != nil || render.Detect(chartDir) != render.KindHelm {
		return nil, nil //nolint:nilerr // the render reports a bad path
	}
	res, err := r.charts.Dependencies(ctx, chartDir, creds)
	if err != nil {
		return nil, fmt.Errorf("chart dependencies: %w", err)
	}
	for _, w := range res.Warnings {
		r.recorder.Eventf(app, nil, corev1.EventTypeWarning, "ChartDependencies", "Render", "%s", w)
	}
	if len(res.Resolved) > 0 {
		pinned := make([]string, len(res.Resolved))
		for i, d := range res.Resolved {
			pinned[i] = d.String()
		}
		log.FromContext(ctx).Info("chart dependencies fetched", "dependencies", strings.Join(pinned, ", "))
	}
	return res.Archives, nil
}

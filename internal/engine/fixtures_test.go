package engine

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keyless-cd/keyless/internal/render"
)

// TestApplyRenderFixtures applies the renderer's kustomize overlay and Helm
// chart fixtures (with a values file outside the chart) to the cluster.
func TestApplyRenderFixtures(t *testing.T) {
	ctx := t.Context()
	e := newEngine(t)
	cs := clientset(t)
	for _, tc := range []struct {
		name string
		opts render.Options
		want map[string]string // Deployment name → image
	}{
		{"kustomize overlay", render.Options{Root: "../render/testdata", Path: "kustomize/overlays/prod"},
			map[string]string{"prod-web": "registry.example.com/web:2.0"}},
		{"helm chart with values", render.Options{Root: "../render/testdata/helm", Path: "charts/web",
			Helm: render.HelmOptions{ReleaseName: "shop", ValueFiles: []string{"../../values/web-prod.yml"}}},
			map[string]string{"shop": "registry.example.com/web:2.0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := newNamespace(t)
			tc.opts.Namespace = ns
			res, err := render.Render(ctx, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			out, err := e.Apply(ctx, res.Objects, ApplyOptions{Namespace: ns, Name: "fixture", Prune: true})
			if err != nil {
				t.Fatal(err)
			}
			// The chart's pre-install migration Job runs as a hook, not as an
			// object of the inventory.
			if out.Count(ActionCreated)+len(out.Hooks) != len(res.Objects) {
				t.Fatalf("created %d objects and ran %d hooks of %d objects: %v %+v", out.Count(ActionCreated), len(out.Hooks), len(res.Objects), actions(out), out.Hooks)
			}
			for name, image := range tc.want {
				d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if got := d.Spec.Template.Spec.Containers[0].Image; got != image {
					t.Errorf("%s image = %s, want %s", name, got, image)
				}
			}
		})
	}
}

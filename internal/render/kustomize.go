package render

import (
	"fmt"

	fluxkustomize "github.com/fluxcd/pkg/kustomize"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// renderKustomize builds the kustomization in dir in-process (krusty), through
// Flux's secure filesystem: nothing outside root is read, plugins are off,
// and remote bases are refused unless opts.AllowRemoteBases.
func renderKustomize(root, dir string, opts Options) ([]sourced, error) {
	rel := relToRoot(root, dir)
	resMap, err := fluxkustomize.SecureBuild(root, dir, opts.AllowRemoteBases)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", rel, err)
	}
	if resMap.Size() > opts.Limits.MaxObjects {
		return nil, fmt.Errorf("kustomize build %s: %d objects, more than the limit of %d", rel, resMap.Size(), opts.Limits.MaxObjects)
	}
	out := make([]sourced, 0, resMap.Size())
	for _, r := range resMap.Resources() {
		// Through JSON, so numbers become int64/float64 as unstructured expects.
		js, err := r.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("kustomize build %s: %s: %w", rel, r.CurId(), err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(js); err != nil {
			return nil, fmt.Errorf("kustomize build %s: %s: %w", rel, r.CurId(), objectError(err))
		}
		out = append(out, sourced{obj: u, source: "kustomization " + rel})
	}
	return out, nil
}

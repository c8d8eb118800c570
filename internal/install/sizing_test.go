package install

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/keyless-cd/keyless/internal/renderproc"
)

// controllerOwnMemory is what docs/install.md ("Sizing: memory") budgets for
// the controller itself: ≈70 MiB idle at 1000 Applications, and the objects
// of the renders it decodes (≈175 MiB of heap for a 60 MiB answer).
const controllerOwnMemory = 512 << 20

// TestShippedMemoryLimitAddsUp: the shipped controller container holds every
// render at once at the default --render-memory-limit, each in its own
// process inside it, plus the controller's own peak. Below that, one
// tenant's render inside every limit of keyless meets the container's: on
// cgroup v2 nodes (kubelet 1.28 or later) the kernel then kills the whole
// container, every tenant's controller, again at each restart.
func TestShippedMemoryLimitAddsUp(t *testing.T) {
	m, err := Render(t.Context(), Options{Namespaces: []string{"myapp"}, WithDeployment: true})
	if err != nil {
		t.Fatal(err)
	}
	var limit, request string
	for _, o := range m.Controller {
		if o.GetKind() != "Deployment" {
			continue
		}
		containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		c, _ := containers[0].(map[string]any)
		limit, _, _ = unstructured.NestedString(c, "resources", "limits", "memory")
		request, _, _ = unstructured.NestedString(c, "resources", "requests", "memory")
	}
	need := int64(renderproc.DefaultConcurrency)*renderproc.DefaultMemoryLimit + controllerOwnMemory
	got, err := resource.ParseQuantity(limit)
	if err != nil || got.Value() < need {
		t.Errorf("container memory limit %q, want at least %d renders × %d MiB + %d MiB = %d MiB",
			limit, renderproc.DefaultConcurrency, renderproc.DefaultMemoryLimit>>20, controllerOwnMemory>>20, need>>20)
	}
	if req, err := resource.ParseQuantity(request); err != nil || req.Cmp(got) > 0 {
		t.Errorf("memory request %q: want one no larger than the limit", request)
	}
}

package engine

import (
	"context"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// written is the identity the API server gave each object an apply wrote:
// ssa applies a copy of the object it is given, so its answer (UID,
// resourceVersion) is caught here, from the write itself, without another
// read.
type written struct {
	mu   sync.Mutex
	byID map[string]writtenObject
}

// writtenObject is an object's identity after a write.
type writtenObject struct {
	uid             types.UID
	resourceVersion string
}

// take returns (and forgets) what the last apply of the object ref said.
func (w *written) take(ref ObjectRef) (writtenObject, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	o, ok := w.byID[ref.ID().String()]
	delete(w.byID, ref.ID().String())
	return o, ok
}

// recordingClient is a client whose server-side applies (not dry runs)
// are noted in written.
type recordingClient struct {
	client.Client
	written *written
}

// Patch patches, and notes what an apply wrote.
func (c recordingClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	if err := c.Client.Patch(ctx, obj, patch, opts...); err != nil {
		return err
	}
	if patch.Type() != types.ApplyPatchType {
		return nil
	}
	po := &client.PatchOptions{}
	po.ApplyOptions(opts)
	if len(po.DryRun) > 0 {
		return nil
	}
	u, ok := obj.(*unstructured.Unstructured) // ssa applies unstructured objects
	if !ok {
		return nil
	}
	ref := RefOf(u)
	c.written.mu.Lock()
	defer c.written.mu.Unlock()
	if len(c.written.byID) > 100_000 {
		clear(c.written.byID) // never read back (an apply whose caller failed): bounded
	}
	c.written.byID[ref.ID().String()] = writtenObject{uid: u.GetUID(), resourceVersion: u.GetResourceVersion()}
	return nil
}

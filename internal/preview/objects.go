package preview

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/keyless-cd/keyless/internal/celhealth"
	"github.com/keyless-cd/keyless/internal/controller"
	"github.com/keyless-cd/keyless/internal/engine"
	"github.com/keyless-cd/keyless/internal/lifecycle"
	"github.com/keyless-cd/keyless/internal/render"
)

// previewApp renders the Application key at both sides (b or h nil where it
// is absent) and compares what they render.
func previewApp(ctx context.Context, r Renderer, key string, base, head *revision, b, h *found) AppReport {
	cur := h
	if cur == nil {
		cur = b
	}
	rep := AppReport{Application: key, Source: cur.source, Path: cur.app.Spec.Source.Path, Prune: cur.app.Prunes()}
	if rep.Path == "" {
		rep.Path = "."
	}
	if h != nil {
		rep.InvalidSpec = checkHealthExprs(h)
	}
	var before, after *render.Result
	if h != nil {
		res, err := renderAt(ctx, r, head, h)
		if err != nil {
			rep.State, rep.HeadError = AppFailed, err.Error()
			return rep
		}
		after = res
		// The namespace is set (discover refuses an Application without one).
		rep.Refused, _ = engine.Check(res.Objects, engine.CheckOptions{Namespace: h.app.Namespace, AllowedSubjects: h.app.Spec.AllowedSubjects(), Source: res.Source})
	}
	if b != nil {
		res, err := renderAt(ctx, r, base, b)
		if err != nil {
			rep.BaseError = err.Error()
		}
		before = res
	}
	if b != nil && h != nil && b.object != nil && h.object != nil {
		if d, _ := engine.UnifiedDiff("base/"+b.source, "head/"+h.source, b.object, h.object); d != "" {
			rep.Changes = append(rep.Changes, Change{
				Action: Changed, APIVersion: h.object.GetAPIVersion(), Kind: h.object.GetKind(),
				Namespace: h.app.Namespace, Name: h.app.Name, Source: h.source, Manifest: true, Diff: d,
			})
		}
	}
	rep.Changes = append(rep.Changes, compare(before, after, cur.app.Namespace, b == nil)...)
	switch {
	case b == nil:
		rep.State = AppAdded
	case h == nil:
		rep.State = AppRemoved
	case len(rep.Changes) > 0:
		rep.State = AppChanged
	default:
		rep.State = AppUnchanged
	}
	return rep
}

// checkHealthExprs compiles f's spec.healthCheckExprs as the controller
// does (celhealth.Compile): an entry that does not compile would make the
// Application InvalidSpec at its next sync, so the merge request fails
// instead, naming the entry ("" when they compile or there are none).
func checkHealthExprs(f *found) string {
	if len(f.app.Spec.HealthCheckExprs) == 0 {
		return ""
	}
	if _, err := celhealth.CompileSpec(f.app.Spec.HealthCheckExprs); err != nil {
		return fmt.Sprintf("%s: %v", f.source, err)
	}
	return ""
}

// renderAt renders f's Application in side's checkout with the options the
// controller uses.
func renderAt(ctx context.Context, r Renderer, side *revision, f *found) (*render.Result, error) {
	if f.app.Spec.Source.IsArtifact() {
		return nil, fmt.Errorf("%w: Application %s/%s deploys an OCI artifact, not a folder of this repository: preview the folder it is published from with keyless render, or leave the file out", ErrNotPreviewable, f.app.Namespace, f.app.Name)
	}
	if f.app.Spec.Source.Chart != "" || len(f.app.Spec.Sources) > 0 {
		return nil, fmt.Errorf("%w: Application %s/%s deploys a chart from a repository (spec.source.chart or spec.sources), which keyless preview does not fetch: preview its values with keyless render, or leave the file out", ErrNotPreviewable, f.app.Namespace, f.app.Name)
	}
	opts, err := controller.RenderOptions(f.app)
	if err != nil {
		return nil, err
	}
	opts.Root = side.dir
	// A preview runs in CI, which holds no decryption key: SOPS files are
	// compared as ciphertext (a re-encrypted value shows as changed, masked).
	opts.ReadEncrypted = true
	return r.Render(ctx, opts)
}

// objectKey identifies an object across the two renders.
type objectKey struct{ group, kind, namespace, name string }

func keyOf(o *unstructured.Unstructured, namespace string) objectKey {
	ns := o.GetNamespace()
	if ns == "" {
		ns = namespace
	}
	return objectKey{o.GroupVersionKind().Group, o.GetKind(), ns, o.GetName()}
}

// compare lists the objects added, changed and removed from before to
// after (either nil: nothing rendered), in render order, removals last.
// firstSync says the Application is new, for the objects' sync phases.
func compare(before, after *render.Result, namespace string, firstSync bool) []Change {
	old := map[objectKey]*unstructured.Unstructured{}
	if before != nil {
		for _, o := range before.Objects {
			old[keyOf(o, namespace)] = o
		}
	}
	var out []Change
	seen := map[objectKey]bool{}
	if after != nil {
		for _, o := range after.Objects {
			k := keyOf(o, namespace)
			seen[k] = true
			prev := old[k]
			d, err := engine.UnifiedDiff(label("base", prev), label("head", o), prev, o)
			if err != nil {
				d = "cannot diff: " + err.Error()
			}
			if d == "" {
				continue
			}
			act := Changed
			if prev == nil {
				act = Added
			}
			out = append(out, change(act, o, after.Source(o), syncOf(o, firstSync), d))
		}
	}
	if before != nil {
		for _, o := range before.Objects {
			if seen[keyOf(o, namespace)] {
				continue
			}
			d, err := engine.UnifiedDiff(label("base", o), "/dev/null", o, nil)
			if err != nil {
				d = "cannot diff: " + err.Error()
			}
			out = append(out, change(Removed, o, before.Source(o), "", d))
		}
	}
	return out
}

func change(act Action, o *unstructured.Unstructured, source, sync, diff string) Change {
	return Change{
		Action: act, APIVersion: o.GetAPIVersion(), Kind: o.GetKind(), Namespace: o.GetNamespace(), Name: o.GetName(),
		Source: source, Sync: sync, Diff: diff,
	}
}

// label names one side of an object's diff: "head/deployment/web", or
// /dev/null where the object is absent.
func label(side string, o *unstructured.Unstructured) string {
	if o == nil {
		return "/dev/null"
	}
	return side + "/" + strings.ToLower(o.GetKind()) + "/" + o.GetName()
}

// syncOf is the object's phase and wave when it has lifecycle annotations,
// else "" (an annotation keyless refuses is shown as such: the sync would
// fail on it).
func syncOf(o *unstructured.Unstructured, firstSync bool) string {
	l, err := lifecycle.Of(o, firstSync)
	if err != nil {
		return "refused: " + err.Error()
	}
	if !l.Hook && !l.Skip && l.Wave == 0 && !l.Replace {
		return ""
	}
	s := l.String()
	if l.Replace {
		s += ", replaced when immutable"
	}
	return s
}

// Package lifecycle places each rendered object in a sync: its phase
// (PreSync, Sync, PostSync, SyncFail, PreDelete, PostDelete), its wave, whether
// it is a hook and how it is deleted, read from Argo CD's and Helm's
// annotations. It is pure: the engine executes the plan it yields.
package lifecycle

import (
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Phase is a step of a sync. Objects are assigned to phases by annotations
// (Argo CD's and Helm's, see LifecycleOf); objects without them are in
// PhaseSync, wave 0.
type Phase string

// The sync phases, in the order they run. PhaseSyncFail runs only when an
// earlier phase failed; the delete phases only when the whole set is deleted.
const (
	PhasePreSync    Phase = "PreSync"
	PhaseSync       Phase = "Sync"
	PhasePostSync   Phase = "PostSync"
	PhaseSyncFail   Phase = "SyncFail"
	PhasePreDelete  Phase = "PreDelete"
	PhasePostDelete Phase = "PostDelete"
)

// DeletePolicy says when a hook object is deleted.
type DeletePolicy string

// The hook delete policies (Argo CD's names; Helm's map onto them).
const (
	// DeleteBeforeHookCreation deletes the previous run's object before
	// creating the hook again: the default, as in Argo CD and Helm.
	DeleteBeforeHookCreation DeletePolicy = "BeforeHookCreation"
	// DeleteHookSucceeded deletes the hook once it succeeded.
	DeleteHookSucceeded DeletePolicy = "HookSucceeded"
	// DeleteHookFailed deletes the hook once it failed.
	DeleteHookFailed DeletePolicy = "HookFailed"
)

// Annotations that place an object in the sync lifecycle.
const (
	ArgoHookAnnotation             = "argocd.argoproj.io/hook"
	ArgoHookDeletePolicyAnnotation = "argocd.argoproj.io/hook-delete-policy"
	ArgoSyncWaveAnnotation         = "argocd.argoproj.io/sync-wave"
	ArgoSyncOptionsAnnotation      = "argocd.argoproj.io/sync-options"
	HelmHookAnnotation             = "helm.sh/hook"
	HelmHookWeightAnnotation       = "helm.sh/hook-weight"
	HelmHookDeletePolicyAnnotation = "helm.sh/hook-delete-policy"
	// SyncOptionsAnnotation is keyless's own sync-options annotation; it
	// takes the same words as Argo CD's (Replace=true, Force=true).
	SyncOptionsAnnotation = "keyless.dev/sync-options"
	// HookLabel marks a hook object keyless created; its value identifies
	// the hook (a hash of kind and name or generateName) within the inventory.
	HookLabel = "keyless.dev/hook"
	// HookPhaseLabel is the phase a hook object was created for.
	HookPhaseLabel = "keyless.dev/hook-phase"
)

// maxWave bounds sync-wave and hook-weight values, so a crafted annotation
// cannot make the plan huge or overflow.
const maxWave = 1 << 20

// Lifecycle is where one object sits in a sync.
type Lifecycle struct {
	// Hook objects are created for each sync, waited for and deleted by
	// their policy; they are not part of the prune inventory.
	Hook bool `json:"hook,omitempty"`
	// Phases the object runs in: PhaseSync for ordinary objects, one or
	// more phases for a hook. Empty when Skip.
	Phases []Phase `json:"phases,omitempty"`
	// Wave orders objects within a phase (ascending).
	Wave int `json:"wave,omitempty"`
	// DeletePolicies of a hook; BeforeHookCreation when none is given.
	DeletePolicies []DeletePolicy `json:"deletePolicies,omitempty"`
	// Replace: the object is deleted and recreated when the API server
	// refuses a change as immutable (Replace=true or Force=true).
	Replace bool `json:"replace,omitempty"`
	// Skip: the object is not applied in this sync (Argo CD's Skip hook,
	// Helm test hooks, Helm hooks of the other event).
	Skip bool `json:"skip,omitempty"`
	// SkipReason says why, for the user.
	SkipReason string `json:"skipReason,omitempty"`
}

// Has reports whether the object runs in phase p.
func (l Lifecycle) Has(p Phase) bool {
	for _, q := range l.Phases {
		if q == p {
			return true
		}
	}
	return false
}

// Deletes reports whether the hook has delete policy p.
func (l Lifecycle) Deletes(p DeletePolicy) bool {
	for _, q := range l.DeletePolicies {
		if q == p {
			return true
		}
	}
	return false
}

// String is e.g. "PreSync hook, wave -1" or "Sync, wave 0".
func (l Lifecycle) String() string {
	if l.Skip {
		return "skipped (" + l.SkipReason + ")"
	}
	ps := make([]string, len(l.Phases))
	for i, p := range l.Phases {
		ps[i] = string(p)
	}
	s := strings.Join(ps, ",")
	if l.Hook {
		s += " hook"
	}
	return fmt.Sprintf("%s, wave %d", s, l.Wave)
}

// Error is a lifecycle annotation keyless cannot honour; it names
// the object and the annotation.
type Error struct {
	Object     string
	Annotation string
	Value      string
	Reason     string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: annotation %s: %q: %s", e.Object, e.Annotation, e.Value, e.Reason)
}

// Of reads u's lifecycle annotations. firstSync says whether this is
// the first sync of the inventory (Helm's install hooks run then, its
// upgrade hooks on later syncs). Argo CD's hook annotation wins over Helm's,
// as in Argo CD.
func Of(u *unstructured.Unstructured, firstSync bool) (Lifecycle, error) {
	ann := u.GetAnnotations()
	id := u.GetKind() + "/" + nameOrGenerate(u)
	l := Lifecycle{}
	wave, err := waveOf(id, ann, ArgoSyncWaveAnnotation)
	if err != nil {
		return l, err
	}
	l.Wave = wave
	l.Replace = syncOption(ann[ArgoSyncOptionsAnnotation], "Replace") || syncOption(ann[ArgoSyncOptionsAnnotation], "Force") ||
		syncOption(ann[SyncOptionsAnnotation], "Replace") || syncOption(ann[SyncOptionsAnnotation], "Force")

	switch {
	case ann[ArgoHookAnnotation] != "":
		err = argoHook(&l, id, ann)
	case ann[HelmHookAnnotation] != "":
		err = helmHook(&l, id, ann, firstSync)
	default:
		l.Phases = []Phase{PhaseSync}
	}
	if err != nil {
		return Lifecycle{}, err
	}
	if l.Hook && len(l.DeletePolicies) == 0 && !l.Skip {
		l.DeletePolicies = []DeletePolicy{DeleteBeforeHookCreation}
	}
	return l, nil
}

func argoHook(l *Lifecycle, id string, ann map[string]string) error {
	for _, v := range splitList(ann[ArgoHookAnnotation]) {
		switch p := Phase(v); p {
		case PhasePreSync, PhaseSync, PhasePostSync, PhaseSyncFail, PhasePreDelete, PhasePostDelete:
			l.Phases = appendPhase(l.Phases, p)
		case "Skip":
			l.Skip, l.SkipReason = true, ArgoHookAnnotation+": Skip"
		default:
			return &Error{Object: id, Annotation: ArgoHookAnnotation, Value: ann[ArgoHookAnnotation],
				Reason: "unknown hook " + strconv.Quote(v) + " (use PreSync, Sync, PostSync, SyncFail, PreDelete, PostDelete or Skip)"}
		}
	}
	if l.Skip {
		l.Phases = nil
		return nil
	}
	l.Hook = true
	for _, v := range splitList(ann[ArgoHookDeletePolicyAnnotation]) {
		switch p := DeletePolicy(v); p {
		case DeleteBeforeHookCreation, DeleteHookSucceeded, DeleteHookFailed:
			l.DeletePolicies = append(l.DeletePolicies, p)
		default:
			return &Error{Object: id, Annotation: ArgoHookDeletePolicyAnnotation, Value: ann[ArgoHookDeletePolicyAnnotation],
				Reason: "unknown delete policy " + strconv.Quote(v) + " (use BeforeHookCreation, HookSucceeded or HookFailed)"}
		}
	}
	return nil
}

// helmHook maps Helm's hook events onto phases. Install hooks run on the
// first sync, upgrade hooks on later ones; rollback and test hooks never
// run (a rollback is a Git revert, which is an upgrade).
func helmHook(l *Lifecycle, id string, ann map[string]string, firstSync bool) error {
	var known bool
	for _, v := range splitList(ann[HelmHookAnnotation]) {
		switch v {
		case "pre-install", "pre-upgrade", "post-install", "post-upgrade":
			known = true
			install := strings.HasSuffix(v, "-install")
			if install != firstSync {
				continue
			}
			p := PhasePreSync
			if strings.HasPrefix(v, "post-") {
				p = PhasePostSync
			}
			l.Phases = appendPhase(l.Phases, p)
		case "pre-delete":
			known = true
			l.Phases = appendPhase(l.Phases, PhasePreDelete)
		case "post-delete":
			known = true
			l.Phases = appendPhase(l.Phases, PhasePostDelete)
		case "test", "test-success", "test-failure", "pre-rollback", "post-rollback":
			known = true
		default:
			return &Error{Object: id, Annotation: HelmHookAnnotation, Value: ann[HelmHookAnnotation],
				Reason: "unknown Helm hook " + strconv.Quote(v)}
		}
	}
	if !known {
		return &Error{Object: id, Annotation: HelmHookAnnotation, Value: ann[HelmHookAnnotation], Reason: "no hook event given"}
	}
	l.Hook = true
	w, err := waveOf(id, ann, HelmHookWeightAnnotation)
	if err != nil {
		return err
	}
	if ann[HelmHookWeightAnnotation] != "" {
		l.Wave = w
	}
	for _, v := range splitList(ann[HelmHookDeletePolicyAnnotation]) {
		switch v {
		case "before-hook-creation":
			l.DeletePolicies = append(l.DeletePolicies, DeleteBeforeHookCreation)
		case "hook-succeeded":
			l.DeletePolicies = append(l.DeletePolicies, DeleteHookSucceeded)
		case "hook-failed":
			l.DeletePolicies = append(l.DeletePolicies, DeleteHookFailed)
		default:
			return &Error{Object: id, Annotation: HelmHookDeletePolicyAnnotation, Value: ann[HelmHookDeletePolicyAnnotation],
				Reason: "unknown delete policy " + strconv.Quote(v) + " (use before-hook-creation, hook-succeeded or hook-failed)"}
		}
	}
	if len(l.Phases) == 0 {
		l.Hook = false
		l.Skip = true
		l.SkipReason = HelmHookAnnotation + ": " + ann[HelmHookAnnotation] + " does not run on "
		if firstSync {
			l.SkipReason += "the first sync (install)"
		} else {
			l.SkipReason += "a later sync (upgrade)"
		}
		l.DeletePolicies = nil
	}
	return nil
}

func waveOf(id string, ann map[string]string, key string) (int, error) {
	v := strings.TrimSpace(ann[key])
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n > maxWave || n < -maxWave {
		return 0, &Error{Object: id, Annotation: key, Value: v, Reason: fmt.Sprintf("not an integer between %d and %d", -maxWave, maxWave)}
	}
	return n, nil
}

// syncOption reports whether the comma list opts holds name=true.
func syncOption(opts, name string) bool {
	for _, o := range splitList(opts) {
		k, v, _ := strings.Cut(o, "=")
		if strings.TrimSpace(k) == name && strings.EqualFold(strings.TrimSpace(v), "true") {
			return true
		}
	}
	return false
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func appendPhase(ps []Phase, p Phase) []Phase {
	for _, q := range ps {
		if q == p {
			return ps
		}
	}
	return append(ps, p)
}

// IsHook reports whether u carries a hook annotation that makes it a hook
// in some sync (the render uses it to accept generateName on hooks only).
func IsHook(u *unstructured.Unstructured) bool {
	ann := u.GetAnnotations()
	if v := ann[ArgoHookAnnotation]; v != "" {
		return strings.TrimSpace(v) != "Skip"
	}
	return ann[HelmHookAnnotation] != ""
}

func nameOrGenerate(u *unstructured.Unstructured) string {
	if n := u.GetName(); n != "" {
		return n
	}
	return u.GetGenerateName() + "*"
}

package lifecycle

import (
	"errors"
	"sort"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Step is one wave of one phase: its ordinary objects are applied and its
// hooks created together, and all must be healthy before the next step.
type Step struct {
	Phase   Phase
	Wave    int
	Objects []*unstructured.Unstructured
	Hooks   []*unstructured.Unstructured
}

// Skipped is an object left out of this sync, and why.
type Skipped struct {
	Object string `json:"object"`
	Reason string `json:"reason"`
}

// Plan is the order a sync runs in.
type Plan struct {
	// Steps are the PreSync, Sync and PostSync waves, in order.
	Steps []Step
	// SyncFail are the SyncFail hooks' waves, run when a step failed.
	SyncFail []Step
	// PreDelete and PostDelete run around deleting the whole set.
	PreDelete, PostDelete []Step
	// Skipped objects are not applied at all.
	Skipped []Skipped
	// Of is each object's lifecycle.
	Of map[*unstructured.Unstructured]Lifecycle
}

// PlanOptions configure NewPlan.
type PlanOptions struct {
	// FirstSync selects Helm's install hooks over its upgrade hooks.
	FirstSync bool
	// SkipHooks leaves every hook out (a self-heal revert re-applies only
	// what drifted; it runs no hook).
	SkipHooks bool
}

// NewPlan places objs in phases and waves. Every annotation error is
// reported at once.
func NewPlan(objs []*unstructured.Unstructured, opts PlanOptions) (*Plan, error) {
	p := &Plan{Of: make(map[*unstructured.Unstructured]Lifecycle, len(objs))}
	type key struct {
		phase Phase
		wave  int
	}
	steps := map[key]*Step{}
	var errs []error
	add := func(k key, o *unstructured.Unstructured, hook bool) {
		s := steps[k]
		if s == nil {
			s = &Step{Phase: k.phase, Wave: k.wave}
			steps[k] = s
		}
		if hook {
			s.Hooks = append(s.Hooks, o)
		} else {
			s.Objects = append(s.Objects, o)
		}
	}
	for _, o := range objs {
		l, err := Of(o, opts.FirstSync)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p.Of[o] = l
		switch {
		case l.Skip:
			p.Skipped = append(p.Skipped, Skipped{Object: o.GetKind() + "/" + nameOrGenerate(o), Reason: l.SkipReason})
		case l.Hook && opts.SkipHooks:
		case l.Hook:
			for _, ph := range l.Phases {
				add(key{ph, l.Wave}, o, true)
			}
		default:
			add(key{PhaseSync, l.Wave}, o, false)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	all := make([]*Step, 0, len(steps))
	for _, s := range steps {
		all = append(all, s)
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].Phase != all[j].Phase {
			return phaseRank(all[i].Phase) < phaseRank(all[j].Phase)
		}
		return all[i].Wave < all[j].Wave
	})
	for _, s := range all {
		switch s.Phase {
		case PhaseSyncFail:
			p.SyncFail = append(p.SyncFail, *s)
		case PhasePreDelete:
			p.PreDelete = append(p.PreDelete, *s)
		case PhasePostDelete:
			p.PostDelete = append(p.PostDelete, *s)
		default:
			p.Steps = append(p.Steps, *s)
		}
	}
	return p, nil
}

func phaseRank(p Phase) int {
	switch p {
	case PhasePreSync:
		return 0
	case PhaseSync:
		return 1
	case PhasePostSync:
		return 2
	case PhaseSyncFail:
		return 3
	case PhasePreDelete:
		return 4
	default:
		return 5
	}
}

// Simple reports whether the plan is one step of ordinary objects with no
// hook and no object to replace: applied exactly as before lifecycles.
func (p *Plan) Simple() bool {
	if len(p.Steps) > 1 || len(p.SyncFail) > 0 || (len(p.Steps) == 0 && p.HasDeleteHooks()) {
		return false
	}
	for _, s := range p.Steps {
		if len(s.Hooks) > 0 {
			return false
		}
		for _, o := range s.Objects {
			if p.Of[o].Replace {
				return false
			}
		}
	}
	return true
}

// Objects returns every ordinary (non-hook, non-skipped) object, in step order.
func (p *Plan) Objects() []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, s := range p.Steps {
		out = append(out, s.Objects...)
	}
	return out
}

// Hooks returns every hook of the sync phases and SyncFail, in step order.
func (p *Plan) Hooks() []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, steps := range [][]Step{p.Steps, p.SyncFail} {
		for _, s := range steps {
			out = append(out, s.Hooks...)
		}
	}
	return out
}

// HasDeleteHooks reports whether the set carries PreDelete or PostDelete hooks.
func (p *Plan) HasDeleteHooks() bool { return len(p.PreDelete)+len(p.PostDelete) > 0 }

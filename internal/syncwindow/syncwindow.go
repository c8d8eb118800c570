// Package syncwindow decides whether sync windows (#39, Argo CD's shape:
// allow or deny, a cron schedule, a duration, a time zone) let an
// Application sync at a given time, and until when they do not. It is pure:
// the controller gives it the Application's windows and the cluster
// admin's, and the time.
//
// The rule is Argo CD's: an active deny window blocks; otherwise, when
// there are allow windows, syncs run only inside an active one. A manual
// sync (`keyless sync`) passes when every blocking window allows manual
// syncs; a drift revert when every blocking window says selfHeal.
package syncwindow

import (
	"errors"
	"fmt"
	"time"

	"github.com/robfig/cron/v3"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

// MaxWindows bounds how many windows one decision weighs.
const MaxWindows = 64

// ErrInvalid is returned (wrapped) for a window that cannot be used.
var ErrInvalid = errors.New("invalid sync window")

// Window is a window and where it comes from ("spec.syncWindows[0]",
// "keyless-sync-windows[2]"), for messages.
type Window struct {
	kv1.SyncWindow
	Source string
}

type compiled struct {
	Window
	schedule cron.Schedule
	duration time.Duration
	loc      *time.Location
}

// Set is compiled windows.
type Set struct {
	windows []compiled
}

// Compile checks and compiles windows; an error names the window.
func Compile(windows []Window) (*Set, error) {
	if len(windows) > MaxWindows {
		return nil, fmt.Errorf("%w: %d windows (at most %d)", ErrInvalid, len(windows), MaxWindows)
	}
	s := &Set{}
	for _, w := range windows {
		if w.Kind != kv1.SyncWindowAllow && w.Kind != kv1.SyncWindowDeny {
			return nil, fmt.Errorf("%w: %s: kind %q (allow or deny)", ErrInvalid, w.Source, w.Kind)
		}
		sched, err := cron.ParseStandard(w.Schedule)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: schedule %q: %w", ErrInvalid, w.Source, w.Schedule, err)
		}
		d, err := time.ParseDuration(w.Duration)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%w: %s: duration %q is not a positive duration such as 1h", ErrInvalid, w.Source, w.Duration)
		}
		loc := time.UTC
		if w.TimeZone != "" {
			if loc, err = time.LoadLocation(w.TimeZone); err != nil {
				return nil, fmt.Errorf("%w: %s: timeZone %q: %w", ErrInvalid, w.Source, w.TimeZone, err)
			}
		}
		s.windows = append(s.windows, compiled{Window: w, schedule: sched, duration: d, loc: loc})
	}
	return s, nil
}

// Decision is what the windows say at one time.
type Decision struct {
	// Blocked: syncs may not run now.
	Blocked bool
	// Window describes the window that blocks (the first active deny
	// window, or the allow windows none of which is active).
	Window string
	// Until is when the blocking ends, as far as these windows say: the
	// latest end of the active deny windows, or the next start of an
	// allow window.
	Until time.Time
	// ManualSync: a manual sync may run anyway; SelfHeal: a drift revert.
	ManualSync, SelfHeal bool
}

// At decides at now.
func (s *Set) At(now time.Time) Decision {
	var d Decision
	if s == nil || len(s.windows) == 0 {
		return d
	}
	var allows []compiled
	allowActive := false
	d.ManualSync, d.SelfHeal = true, true
	for _, w := range s.windows {
		start, active := w.active(now)
		if w.Kind == kv1.SyncWindowAllow {
			allows = append(allows, w)
			allowActive = allowActive || active
			continue
		}
		if !active {
			continue
		}
		if !d.Blocked {
			d.Window = w.describe()
		}
		d.Blocked = true
		d.ManualSync = d.ManualSync && w.ManualSync
		d.SelfHeal = d.SelfHeal && w.SelfHeal
		if end := w.end(start); end.After(d.Until) {
			d.Until = end
		}
	}
	if d.Blocked || len(allows) == 0 || allowActive {
		if !d.Blocked {
			d.ManualSync, d.SelfHeal = false, false
		}
		return d
	}
	d.Blocked = true
	d.ManualSync, d.SelfHeal = false, false
	for i, w := range allows {
		next := w.schedule.Next(now.In(w.loc))
		if i == 0 || next.Before(d.Until) {
			d.Until, d.Window = next, "outside every allow window (next: "+w.describe()+")"
		}
		d.ManualSync = d.ManualSync || w.ManualSync
		d.SelfHeal = d.SelfHeal || w.SelfHeal
	}
	return d
}

// active reports whether w is open at now, and since when: the first
// activation after now-duration is at or before now (Argo CD's test).
func (w compiled) active(now time.Time) (time.Time, bool) {
	start := w.schedule.Next(now.In(w.loc).Add(-w.duration))
	return start, !start.After(now)
}

// maxSteps bounds the walks over a schedule's activations.
const maxSteps = 100_000

// end is when w, open since start, closes: the latest activation before
// the window would close extends it (a "* * * * *" deny window for 1h is
// open as long as it keeps starting), as far as maxSteps activations go.
func (w compiled) end(start time.Time) time.Time {
	end := start.Add(w.duration)
	for range maxSteps {
		next := w.schedule.Next(start)
		if next.IsZero() || !next.Before(end) {
			return end
		}
		start, end = next, next.Add(w.duration)
	}
	return end
}

func (w compiled) describe() string {
	return fmt.Sprintf("%s %q for %s (%s, %s)", w.Kind, w.Schedule, w.Duration, w.loc, w.Source)
}

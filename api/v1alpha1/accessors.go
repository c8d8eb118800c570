package v1alpha1

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MinInterval is the shortest spec.interval honoured.
const MinInterval = 5 * time.Second

// Automated reports whether the Application syncs by itself
// (spec.syncPolicy.automated is set).
func (a *Application) Automated() bool {
	return a.Spec.SyncPolicy != nil && a.Spec.SyncPolicy.Automated != nil
}

// Prunes reports whether objects that left Git are deleted
// (syncPolicy.automated.prune).
func (a *Application) Prunes() bool {
	return a.Automated() && a.Spec.SyncPolicy.Automated.Prune
}

// SelfHeals reports whether drift is reverted (syncPolicy.automated.selfHeal).
func (a *Application) SelfHeals() bool {
	return a.Automated() && a.Spec.SyncPolicy.Automated.SelfHeal
}

// AllowsEmpty reports whether an empty render may apply, and so prune
// everything (syncPolicy.automated.allowEmpty).
func (a *Application) AllowsEmpty() bool {
	return a.Automated() && a.Spec.SyncPolicy.Automated.AllowEmpty
}

// Pause is the value of PauseAnnotation.
// +kubebuilder:object:generate=false
type Pause struct {
	Until  time.Time `json:"until"`
	By     string    `json:"by"`
	Reason string    `json:"reason"`
}

// maxPauseAnnotation bounds PauseAnnotation's value.
const maxPauseAnnotation = 4 << 10

// PausedAt returns the pause in force at now (nil: none, expired, or an
// annotation that is not a valid pause — never one past MaxPause from now).
func (a *Application) PausedAt(now time.Time) *Pause {
	raw := a.Annotations[PauseAnnotation]
	if raw == "" || len(raw) > maxPauseAnnotation {
		return nil
	}
	var p Pause
	if err := json.Unmarshal([]byte(raw), &p); err != nil || p.By == "" || p.Reason == "" {
		return nil
	}
	if !p.Until.After(now) || p.Until.After(now.Add(MaxPause)) {
		return nil
	}
	return &p
}

// ApprovesOutOfNamespace reports whether out-of-namespace objects wait
// for a person's approval instead of being refused
// (spec.syncPolicy.outOfNamespace: approve).
func (a *Application) ApprovesOutOfNamespace() bool {
	return a.Spec.SyncPolicy != nil && a.Spec.SyncPolicy.OutOfNamespace == OutOfNamespaceApprove
}

// AllowsSelfApproval reports whether the commit's author may approve its
// out-of-namespace objects (spec.syncPolicy.approval.allowSelfApproval).
func (a *Application) AllowsSelfApproval() bool {
	return a.Spec.SyncPolicy != nil && a.Spec.SyncPolicy.Approval != nil && a.Spec.SyncPolicy.Approval.AllowSelfApproval
}

// Defaults of spec.syncPolicy.retry.
const (
	DefaultRetryLimit       = 5
	DefaultRetryDuration    = 5 * time.Second
	DefaultRetryFactor      = 2
	DefaultRetryMaxDuration = 3 * time.Minute
)

// RetryPolicy returns spec.syncPolicy.retry with its defaults filled in:
// the retry limit (negative: none) and the wait before retry n (from 1).
// ok is false without a retry policy.
func (a *Application) RetryPolicy() (limit int64, backoff func(n int) time.Duration, ok bool) {
	if a.Spec.SyncPolicy == nil || a.Spec.SyncPolicy.Retry == nil {
		return 0, nil, false
	}
	r := a.Spec.SyncPolicy.Retry
	limit = DefaultRetryLimit
	if r.Limit != nil {
		limit = *r.Limit
	}
	base, factor, maxWait := DefaultRetryDuration, int64(DefaultRetryFactor), DefaultRetryMaxDuration
	if b := r.Backoff; b != nil {
		if d, err := time.ParseDuration(b.Duration); err == nil && d > 0 {
			base = d
		}
		if b.Factor != nil && *b.Factor >= 1 {
			factor = *b.Factor
		}
		if d, err := time.ParseDuration(b.MaxDuration); err == nil && d > 0 {
			maxWait = d
		}
	}
	return limit, func(n int) time.Duration {
		d := base
		for i := 1; i < n && d < maxWait; i++ {
			d *= time.Duration(factor)
		}
		return min(d, maxWait)
	}, true
}

// IntervalOr returns spec.interval (at least MinInterval), or def when unset.
func (a *Application) IntervalOr(def time.Duration) time.Duration {
	if a.Spec.Interval != nil && a.Spec.Interval.Duration > 0 {
		return max(a.Spec.Interval.Duration, MinInterval)
	}
	return def
}

// SyncOptionTrue reports whether spec.syncPolicy.syncOptions holds name=true.
func (a *Application) SyncOptionTrue(name string) bool {
	if a.Spec.SyncPolicy == nil {
		return false
	}
	for _, o := range a.Spec.SyncPolicy.SyncOptions {
		if o == name+"=true" {
			return true
		}
	}
	return false
}

// HonouredSyncOptions are the syncOptions keyless accepts; the first two
// change what it does, the others describe what it always does.
var HonouredSyncOptions = []string{"Replace=true", "Force=true", "ServerSideApply=true", "ApplyOutOfSyncOnly=true", "PruneLast=true"}

// ShortSHA is a commit's first 7 hex digits, as Git shows it, or a chart's
// version@ and its digest's first 7, each part of a multi-source revision
// shortened (what status, Events and the CLI print); shorter input is
// returned as it is.
func ShortSHA(sha string) string {
	if parts := strings.Split(sha, ","); len(parts) > 1 {
		// A multi-source revision: the rendered source's, then ref=SHA each.
		for i, p := range parts {
			if ref, rev, ok := strings.Cut(p, "="); ok && i > 0 {
				parts[i] = ref + "=" + ShortSHA(rev)
			} else {
				parts[i] = ShortSHA(p)
			}
		}
		return strings.Join(parts, ",")
	}
	if version, digest, ok := strings.Cut(sha, "@sha256:"); ok {
		// A chart's or an artifact's revision: version@sha256:digest.
		return version + "@" + ShortSHA(digest)
	}
	if digest, ok := strings.CutPrefix(sha, "sha256:"); ok {
		// An artifact asked for by digest.
		return "sha256:" + ShortSHA(digest)
	}
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

// Wants reports whether n is sent for event (every event when Events is empty).
func (n Notification) Wants(event string) bool {
	return len(n.Events) == 0 || slices.Contains(n.Events, event)
}

// StatusContext is the commit-status context an Application reports under:
// keyless/<namespace>/<name>.
func (a *Application) StatusContext() string {
	return "keyless/" + a.Namespace + "/" + a.Name
}

// TargetURLOrEmpty is c's TargetURL, "" when c is nil.
func (c *CommitStatus) TargetURLOrEmpty() string {
	if c == nil {
		return ""
	}
	return c.TargetURL
}

// RequestSync asks the controller for one sync now: it sets
// SyncRequestedAnnotation to token (any new value; keyless sync uses the
// time). The caller patches the Application with it.
func (a *Application) RequestSync(token string) {
	if a.Annotations == nil {
		a.Annotations = map[string]string{}
	}
	a.Annotations[SyncRequestedAnnotation] = token
}

// OrUnknown is a sync or health status as shown to people: "Unknown" when
// the controller has not said yet.
func OrUnknown(status string) string {
	if status == "" {
		return SyncStatusUnknown
	}
	return status
}

// UseRenderedSource makes Source the source to render: with spec.sources,
// the one entry without a ref (the others are only read for values). It
// fails, naming the field, when spec.sources has none or several.
func (s *ApplicationSpec) UseRenderedSource() error {
	if len(s.Sources) == 0 {
		return nil
	}
	found := -1
	for i, src := range s.Sources {
		if src.Ref != "" {
			continue
		}
		if found >= 0 {
			return fmt.Errorf("spec.sources[%d] and spec.sources[%d] both lack a ref: exactly one source is rendered, the others are values (ref) sources", found, i)
		}
		found = i
	}
	if found < 0 {
		return errors.New("spec.sources: every source has a ref; one source without a ref must say what to render")
	}
	s.Source = s.Sources[found]
	return nil
}

// RefSources are the spec.sources entries read for values ($ref/path).
func (s *ApplicationSpec) RefSources() []ApplicationSource {
	var out []ApplicationSource
	for _, src := range s.Sources {
		if src.Ref != "" {
			out = append(out, src)
		}
	}
	return out
}

// ReadyState summarises the Ready condition for lists (keyless get, the
// dashboard): the state — "Ready", or the condition's reason (Progressing,
// OutOfSync, Suspended, a health status, or a failure such as RenderFailed),
// or Unknown before the controller's first pass — its message, and whether
// it is a failure: a step that did not succeed (Git, render, decryption,
// apply, an invalid spec…), not an Application rolling out, waiting for a
// manual sync, suspended or unhealthy (Health says those).
func (a *Application) ReadyState() (state, message string, failing bool) {
	for _, c := range a.Status.Conditions {
		if c.Type != ReadyCondition {
			continue
		}
		switch {
		case c.Status == metav1.ConditionTrue:
			return "Ready", c.Message, false
		case c.Status == metav1.ConditionUnknown || c.Reason == "":
			return SyncStatusUnknown, c.Message, false
		}
		switch c.Reason {
		case ReasonProgressing, ReasonOutOfSync, ReasonSuspended, ReasonAwaitingApproval, ReasonDependencyNotReady, ReasonSyncWindowClosed, HealthDegraded, HealthMissing, HealthUnknown:
			return c.Reason, c.Message, false
		}
		return c.Reason, c.Message, true
	}
	return SyncStatusUnknown, "", false
}

// IsArtifact reports whether s is a folder from an OCI artifact: an oci://
// repository without a chart.
func (s ApplicationSource) IsArtifact() bool {
	return s.Chart == "" && strings.HasPrefix(s.RepoURL, "oci://")
}

// Held says what holds the Application's syncs back now, for lists
// (keyless get -o wide, the dashboard): a closed sync window ("window
// closed until 2026-12-07 18:00Z: deny 0 22 * * 5 for 60h (…)"), a pause
// of self-heal ("self-heal paused until … by alice: INC-123"), both, or "".
func (a *Application) Held(now time.Time) string {
	var parts []string
	if w := a.Status.SyncWindow; w != nil && (w.Until.IsZero() || w.Until.After(now)) {
		until := "further notice"
		if !w.Until.IsZero() {
			until = w.Until.UTC().Format("2006-01-02 15:04Z")
		}
		parts = append(parts, "window closed until "+until+": "+w.Window)
	}
	if p := a.PausedAt(now); p != nil {
		s := "self-heal paused until " + p.Until.UTC().Format("2006-01-02 15:04Z")
		if p.By != "" {
			s += " by " + p.By
		}
		if p.Reason != "" {
			s += ": " + p.Reason
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

package preview

import (
	"errors"
	"fmt"
	"strings"

	"github.com/keyless-cd/keyless/internal/engine"
)

// Report is what a change does to each Application of a repository.
type Report struct {
	Base Commit `json:"base"`
	Head Commit `json:"head"`
	// Applications previewed, by namespace/name.
	Applications []AppReport `json:"applications"`
	// Skipped Applications and why (another repository's).
	Skipped []Skipped `json:"skipped,omitempty"`
	// Warnings about manifests that could not be read as Applications.
	Warnings []string `json:"warnings,omitempty"`
}

// Commit is one revision of the preview.
type Commit struct {
	Revision string `json:"revision"` // as given
	SHA      string `json:"sha"`
	Author   string `json:"author"`
	Message  string `json:"message"` // subject line
}

// Short is the commit's abbreviated SHA.
func (c Commit) Short() string {
	if len(c.SHA) > 12 {
		return c.SHA[:12]
	}
	return c.SHA
}

// Skipped is an Application found but not previewed.
type Skipped struct {
	Application string `json:"application"`
	Reason      string `json:"reason"`
}

// AppState says what the change does to an Application as a whole.
type AppState string

// The states of an AppReport.
const (
	AppAdded     AppState = "added"     // the Application is new at head
	AppRemoved   AppState = "removed"   // the Application is gone at head
	AppChanged   AppState = "changed"   // it or what it renders changed
	AppUnchanged AppState = "unchanged" // renders the same objects
	AppFailed    AppState = "failed"    // does not render at head
)

// AppReport is the preview of one Application.
type AppReport struct {
	// Application is namespace/name.
	Application string   `json:"application"`
	State       AppState `json:"state"`
	// Source is the Application manifest's file:line (head, else base).
	Source string `json:"source"`
	// Path is spec.source.path (head, else base).
	Path string `json:"path"`
	// Prune says whether objects that leave the render are deleted
	// (spec.syncPolicy.automated.prune) or left in the cluster.
	Prune bool `json:"prune"`
	// HeadError is why the Application does not render at head, naming
	// the file and line.
	HeadError string `json:"headError,omitempty"`
	// InvalidSpec is why the controller would refuse the Application's
	// spec at head (InvalidSpec): a spec.healthCheckExprs entry that does
	// not compile, named with the manifest's file:line.
	InvalidSpec string `json:"invalidSpec,omitempty"`
	// BaseError is why it did not render at base; its head objects then
	// show as added.
	BaseError string `json:"baseError,omitempty"`
	// Changes are the objects added, changed and removed, the
	// Application's own manifest first when it changed.
	Changes []Change `json:"changes,omitempty"`
	// Refused are the objects of the head render that the controller's
	// guards refuse (engine.Check: cluster-scoped, another namespace,
	// the deployer's identity, RBAC handing out rights), each with its
	// source: the controller would apply nothing of the render.
	Refused []engine.Refusal `json:"refused,omitempty"`
}

// Count returns how many changes have action a.
func (a *AppReport) Count(act Action) int {
	n := 0
	for _, c := range a.Changes {
		if c.Action == act {
			n++
		}
	}
	return n
}

// Action is what happens to one object.
type Action string

// The actions of a Change.
const (
	Added   Action = "added"
	Changed Action = "changed"
	Removed Action = "removed"
)

// Change is one object the change adds, changes or removes.
type Change struct {
	Action     Action `json:"action"`
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	// Source is where the object comes from (file:line, template), at head
	// (at base for a removal).
	Source string `json:"source,omitempty"`
	// Sync is the object's phase and wave when it has lifecycle
	// annotations ("PreSync hook, wave -1"), else "".
	Sync string `json:"sync,omitempty"`
	// Manifest marks the change of the Application's own manifest.
	Manifest bool `json:"manifest,omitempty"`
	// Diff is the unified YAML diff, Secret values masked.
	Diff string `json:"diff"`
}

// Ref is "apps/v1 Deployment ns/name".
func (c Change) Ref() string {
	name := c.Name
	if c.Namespace != "" {
		name = c.Namespace + "/" + name
	}
	return c.APIVersion + " " + c.Kind + " " + name
}

// Changed reports whether any Application changes (or fails).
func (r *Report) Changed() bool {
	for _, a := range r.Applications {
		if a.State != AppUnchanged {
			return true
		}
	}
	return false
}

// Err is nil unless the head breaks an Application: one that does not
// render (an error wrapping ErrRenderFailed names each), whose spec the
// controller refuses (wrapping ErrInvalidSpec: a health check expression
// that does not compile, named) or that renders objects the controller
// refuses (wrapping engine.ErrRefused, naming each Application and how
// many); they are joined when several happen.
func (r *Report) Err() error {
	var failed, invalid, refused []string
	for _, a := range r.Applications {
		if a.State == AppFailed {
			failed = append(failed, a.Application+": "+a.HeadError)
		}
		if a.InvalidSpec != "" {
			invalid = append(invalid, a.Application+": "+a.InvalidSpec)
		}
		if len(a.Refused) > 0 {
			refused = append(refused, fmt.Sprintf("%s: %d", a.Application, len(a.Refused)))
		}
	}
	var errs []error
	if len(failed) > 0 {
		errs = append(errs, fmt.Errorf("%w: %s", ErrRenderFailed, strings.Join(failed, "; ")))
	}
	if len(invalid) > 0 {
		errs = append(errs, fmt.Errorf("%w: %s", ErrInvalidSpec, strings.Join(invalid, "; ")))
	}
	if len(refused) > 0 {
		errs = append(errs, fmt.Errorf("%w: the controller would refuse objects rendered at the head revision (%s)", engine.ErrRefused, strings.Join(refused, "; ")))
	}
	return errors.Join(errs...)
}

package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/gitsource"
	"github.com/keyless-cd/keyless/internal/preview"
	"github.com/keyless-cd/keyless/internal/renderproc"
	"github.com/keyless-cd/keyless/internal/rollback"
)

// Rollback roles of a history record (the ROLLBACK column).
const (
	rollbackCurrent = "current"
	rollbackTarget  = "target"
)

// rollbackRole says whether h is what runs now, a revision a rollback can
// return to (it synced successfully), or neither.
func rollbackRole(app *kv1.Application, h kv1.SyncRecord) string {
	switch {
	case h.Revision == app.Status.LastAppliedRevision && h.Result == kv1.SyncResultSucceeded:
		return rollbackCurrent
	case h.Result == kv1.SyncResultSucceeded:
		return rollbackTarget
	}
	return "-"
}

// rollbackChanges renders each rollback target of app's history against
// what runs now (status.lastAppliedRevision) and summarises what a
// rollback to it would change, by revision.
func (f *historyFlags) rollbackChanges(cmd *cobra.Command, streams IOStreams, app *kv1.Application) (map[string]string, error) {
	ctx := cmd.Context()
	if err := rollsBackThroughGit(app); err != nil {
		return nil, err
	}
	current := app.Status.LastAppliedRevision
	if current == "" {
		return nil, fmt.Errorf("no rollback to compare with: Application %s/%s has applied nothing yet", app.Namespace, app.Name)
	}
	c, err := f.appClient()
	if err != nil {
		return nil, err
	}
	auth, err := f.credential(ctx, c, app, streams.getenv)
	if err != nil {
		return nil, err
	}
	branch := app.Spec.Source.TargetRevision
	if branch == "HEAD" || fullSHA.MatchString(branch) {
		branch = ""
	}
	_, _ = fmt.Fprintf(streams.ErrOut, "cloning %s ...\n", gitsource.Redact(app.Spec.Source.RepoURL))
	dir, err := rollback.Clone(ctx, app.Spec.Source.RepoURL, branch, auth, "", f.cloneLimits())
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	runner, err := renderproc.New(f.limits.options())
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, h := range app.Status.History {
		if rollbackRole(app, h) != rollbackTarget || out[h.Revision] != "" {
			continue
		}
		_, _ = fmt.Fprintf(streams.ErrOut, "rendering %s ...\n", kv1.ShortSHA(h.Revision))
		rep, err := preview.Run(ctx, preview.Options{Dir: dir, Base: current, Head: h.Revision, Applications: []*kv1.Application{app}, Renderer: runner})
		if err != nil {
			out[h.Revision] = "cannot tell: " + firstLine(err.Error(), 80)
			continue
		}
		out[h.Revision] = summarizeRollback(rep)
	}
	return out, nil
}

// summarizeRollback is one line: the objects a rollback adds, changes and removes.
func summarizeRollback(rep *preview.Report) string {
	if len(rep.Applications) == 0 {
		return "nothing to render"
	}
	a := rep.Applications[0]
	switch a.State {
	case preview.AppUnchanged:
		return "no change"
	case preview.AppFailed:
		return "does not render: " + firstLine(a.HeadError, 80)
	}
	var kinds []string
	for _, c := range a.Changes {
		kinds = append(kinds, string(c.Action)[:1]+" "+c.Kind+"/"+c.Name)
	}
	return fmt.Sprintf("%d added, %d changed, %d removed (%s)", a.Count(preview.Added), a.Count(preview.Changed), a.Count(preview.Removed),
		firstLine(strings.Join(kinds, ", "), 80))
}

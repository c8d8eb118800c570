package ui

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/approval"
	"github.com/keyless-cd/keyless/internal/approver"
	"github.com/keyless-cd/keyless/internal/forge"
)

// digestField is the approve form's field naming the digest the viewer
// reviewed: another digest waiting by the time they press is not approved.
const digestField = "digest"

// approvalView is an Application's status.approval on its page.
type approvalView struct {
	// Pending is what waits for approval, nil when nothing does.
	Pending *pendingView
	// Approved is the last approval, nil when none.
	Approved *approvedView
	// CanApprove: the API server would let the viewer do the approval
	// (mayApprove), and four eyes do not exclude them. The Approve button
	// is shown only then.
	CanApprove bool
	// Note says why the button is not shown ("" when it is).
	Note string
}

// pendingView is status.approval.pending.
type pendingView struct {
	Revision, RevisionURL string
	Author, Since, Age    string
	Digest                string
	Objects               []pendingObject
	Removed               []string
	Diff                  string
}

// pendingObject is one out-of-namespace object waiting, with its change
// since the last approval.
type pendingObject struct {
	Ref string
	// Mark is + (added), ~ (changed) or blank (as approved); Change says it
	// in words.
	Mark, Change string
}

// approvedView is status.approval.approved.
type approvedView struct {
	Digest, Revision, RevisionURL string
	Approver, At                  string
	SelfApproved                  bool
}

// approvalOf is app's status.approval as shown, or nil.
func approvalOf(app *kv1.Application, now time.Time) *approvalView {
	st := app.Status.Approval
	if st == nil || (st.Pending == nil && st.Approved == nil) {
		return nil
	}
	provider := forge.ProviderOf(app)
	v := &approvalView{}
	if p := st.Pending; p != nil {
		v.Pending = &pendingView{
			Revision: kv1.ShortSHA(p.Revision), RevisionURL: forge.CommitURL(provider, app.Spec.Source.RepoURL, p.Revision),
			Author: p.Author, Since: timestamp(p.Since), Age: Age(now, p.Since.Time), Digest: p.Digest,
			Removed: p.Removed, Diff: p.Diff,
		}
		for _, ref := range p.Objects {
			o := pendingObject{Ref: ref, Mark: " ", Change: "as approved"}
			switch {
			case slices.Contains(p.Added, ref):
				o.Mark, o.Change = "+", "added"
			case slices.Contains(p.Changed, ref):
				o.Mark, o.Change = "~", "changed"
			}
			v.Pending.Objects = append(v.Pending.Objects, o)
		}
	}
	if a := st.Approved; a != nil {
		v.Approved = &approvedView{
			Digest: a.Digest, Revision: kv1.ShortSHA(a.Revision), RevisionURL: forge.CommitURL(provider, app.Spec.Source.RepoURL, a.Revision),
			Approver: a.Approver, At: timestamp(a.At), SelfApproved: a.SelfApproved,
		}
	}
	return v
}

// approvedPage is the answer to an approval that went through.
type approvedPage struct {
	page
	App appRow
	// Record is what was recorded; Store where (namespace/name).
	Record *approval.Record
	Store  string
	// Revision is the record's, short; At when, as the pages show times.
	Revision, At string
	// Progress is what was applied and deleted, a line each.
	Progress string
	// Follow is the Application's page following the sync request, ""
	// when requesting it failed (SyncError says why).
	Follow, SyncError string
}

// serveApprove does what `keyless approve APP -n NS --yes --async` does, as
// the viewer: approver.Prepare (four eyes, a server-side dry run as the
// viewer), Plan.Apply (the objects applied and the approval recorded as the
// viewer), then a sync request. The API server decides whether the viewer
// may; every refusal is shown on a page, with what was applied before it.
func (s *Server) serveApprove(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.RequestTimeout)
	defer cancel()
	app, ok := s.postedApp(ctx, w, r, "Approve")
	if !ok {
		return
	}
	reviewed := r.PostForm.Get(digestField)
	if err := stillPending(app, reviewed); err != nil {
		s.approveFailed(ctx, w, app, err, "")
		return
	}
	// An approval is not abandoned half-way when the browser goes away:
	// it runs to its end, bounded by its own timeout.
	work, cancelWork := context.WithTimeout(context.WithoutCancel(r.Context()), s.opts.ApproveTimeout+2*s.opts.RequestTimeout)
	defer cancelWork()
	plan, err := approver.Prepare(work, approver.Options{Config: s.cfg, Namespace: app.Namespace, Name: app.Name,
		ControllerNamespace: s.opts.ControllerNamespace, WaitTimeout: s.opts.ApproveTimeout})
	if err == nil && plan.Pending.Digest != reviewed {
		err = fmt.Errorf("%w: you reviewed %s, the stored objects are %s: reload the page and review them", approver.ErrStale, reviewed, plan.Pending.Digest)
	}
	var progress bytes.Buffer
	var rec *approval.Record
	if err == nil {
		rec, err = plan.Apply(work, &progress)
	}
	if err != nil {
		s.approveFailed(ctx, w, app, err, progress.String())
		return
	}
	s.opts.Logger.Info("approved", "namespace", app.Namespace, "name", app.Name, "digest", rec.Digest, "revision", rec.Revision,
		"approver", rec.Approver, "selfApproved", rec.SelfApproved)
	p := approvedPage{page: s.pageFor(ctx, "Approved "+app.Namespace+"/"+app.Name), App: rowOf(app, time.Time{}), Record: rec,
		Store: s.opts.ControllerNamespace + "/" + approval.RecordName(app.Namespace, app.Name), Progress: progress.String(),
		Revision: kv1.ShortSHA(rec.Revision), At: timestamp(metav1.NewTime(rec.At))}
	if token, err := s.requestSync(work, plan.App.DeepCopy()); err != nil {
		p.SyncError = fmt.Sprintf("Requesting the sync failed (the controller finds the approval within its interval): %s", errorText(err))
	} else {
		p.Follow = p.App.Path() + "?requested=" + token
	}
	s.render(w, http.StatusOK, "approved.html", p)
}

// stillPending checks, before any work, that app still waits on the digest
// the viewer reviewed.
func stillPending(app *kv1.Application, reviewed string) error {
	st := app.Status.Approval
	if st == nil || st.Pending == nil {
		return fmt.Errorf("%w: Application %s/%s", approver.ErrNothingPending, app.Namespace, app.Name)
	}
	if st.Pending.Digest != reviewed {
		return fmt.Errorf("%w: you reviewed %q, %s waits now: reload the page and review it", approver.ErrStale, reviewed, st.Pending.Digest)
	}
	return nil
}

// approveFailed shows why an approval did not go through, and what it
// applied before it stopped.
func (s *Server) approveFailed(ctx context.Context, w http.ResponseWriter, app *kv1.Application, err error, progress string) {
	status := http.StatusBadGateway
	switch {
	case errors.Is(err, approver.ErrSelfApproval), apierrors.IsForbidden(err):
		status = http.StatusForbidden
	case errors.Is(err, approver.ErrStale), errors.Is(err, approver.ErrNothingPending):
		status = http.StatusConflict
	case errors.Is(err, context.DeadlineExceeded):
		status = http.StatusGatewayTimeout
	}
	s.opts.Logger.Info("approval refused or failed", "namespace", app.Namespace, "name", app.Name, "viewer", s.viewer(ctx), "error", err.Error())
	msg := fmt.Sprintf("Approving %s/%s failed: %s", app.Namespace, app.Name, err)
	if progress != "" {
		progress = "Applied as you before the failure:\n" + progress
	}
	s.failWith(ctx, w, status, msg, progress)
}

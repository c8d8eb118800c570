package ui

import (
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"slices"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

var templates = template.Must(template.New("").Funcs(template.FuncMap{
	"class": statusClass,
}).ParseFS(templateFS, "templates/*.html"))

// maxEvents bounds the Events shown for one Application.
const maxEvents = 50

// Handler is the dashboard's HTTP handler for a server listening on
// listenAddr (the Host header must name it, or Options.AllowedHosts).
func (s *Server) Handler(listenAddr string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.serveList)
	mux.HandleFunc("GET /apps/{namespace}/{name}", s.serveApp)
	mux.HandleFunc("POST /apps/{namespace}/{name}/sync", s.serveSync)
	mux.HandleFunc("POST /apps/{namespace}/{name}/approve", s.serveApprove)
	mux.HandleFunc("GET /events", s.live.serveEvents)
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	return secure(newHostCheck(listenAddr, s.opts.AllowedHosts), mux)
}

// watchedNamespaces are what the hub watches: every namespace, or each given.
func (s *Server) watchedNamespaces() []string {
	if s.opts.AllNamespaces {
		return []string{allNamespaces}
	}
	return s.opts.Namespaces
}

func (s *Server) serveList(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.RequestTimeout)
	defer cancel()
	p := listPage{page: s.pageFor(ctx, "Applications"), Statuses: statusFilters,
		FilterNamespace: r.URL.Query().Get("namespace"), FilterStatus: r.URL.Query().Get("status")}
	now := s.opts.Now()
	var rows []appRow
	for _, ns := range s.watchedNamespaces() {
		list := &kv1.ApplicationList{}
		var opts []client.ListOption
		if ns != allNamespaces {
			opts = append(opts, client.InNamespace(ns))
		}
		if err := s.apps.List(ctx, list, opts...); err != nil {
			p.Notes = append(p.Notes, listNote(ns, err))
			continue
		}
		for i := range list.Items {
			rows = append(rows, rowOf(&list.Items[i], now))
		}
	}
	slices.SortFunc(rows, func(a, b appRow) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	p.Counts = counts(rows)
	for _, row := range rows {
		if !slices.Contains(p.Namespaces, row.Namespace) {
			p.Namespaces = append(p.Namespaces, row.Namespace)
		}
		if row.matches(p.FilterNamespace, p.FilterStatus) {
			p.Rows = append(p.Rows, row)
		}
	}
	s.render(w, http.StatusOK, "list.html", p)
}

func listNote(ns string, err error) string {
	where := "namespace " + ns
	if ns == allNamespaces {
		where = "all namespaces"
	}
	if apierrors.IsForbidden(err) {
		hint := ""
		if ns == allNamespaces {
			hint = " (start keyless ui with -n NAMESPACE for the namespaces you may read)"
		}
		return fmt.Sprintf("You may not list Applications in %s%s.", where, hint)
	}
	return fmt.Sprintf("Listing Applications in %s failed: %s", where, errorText(err))
}

func (s *Server) serveApp(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.RequestTimeout)
	defer cancel()
	app, ok := s.getApp(ctx, w, r)
	if !ok {
		return
	}
	now := s.opts.Now()
	_ = app.Spec.UseRenderedSource() // spec.sources: show the rendered one
	p := appPage{
		page: s.pageFor(ctx, app.Namespace+"/"+app.Name), App: rowOf(app, now),
		RepoURL: app.Spec.Source.RepoURL, TargetRevision: app.Spec.Source.TargetRevision, Path: app.Spec.Source.Path,
		Automated: automatedOf(app), Conditions: conditionsOf(app, now), History: historyOf(app),
	}
	if p.TargetRevision == "" {
		p.TargetRevision = "HEAD"
	}
	if app.Status.Sync.Status == kv1.SyncStatusOutOfSync {
		p.Drifted, p.Diff = app.Status.Sync.Drifted, app.Status.Sync.Diff
	}
	if req := r.URL.Query().Get("requested"); req != "" && req == app.Annotations[kv1.SyncRequestedAnnotation] {
		p.SyncRequest = "pending"
		if app.Status.LastHandledSyncRequest == req {
			p.SyncRequest = "handled"
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { p.Objects, p.ObjectNotes = s.objectTree(ctx, app) })
	wg.Go(func() { p.Events, p.EventsNote = s.events(ctx, app, now) })
	p.Approval = approvalOf(app, now)
	wg.Go(func() {
		p.CanSync = s.mayPatch(ctx, app)
		if p.CanSync {
			p.CSRF = string(s.csrf)
		}
		if p.Approval != nil && p.Approval.Pending != nil {
			p.Approval.CanApprove, p.Approval.Note = s.mayApprove(ctx, app, p.CanSync)
		}
	})
	wg.Wait()
	s.render(w, http.StatusOK, "app.html", p)
}

// getApp reads the Application the path names, or writes the error page.
func (s *Server) getApp(ctx context.Context, w http.ResponseWriter, r *http.Request) (*kv1.Application, bool) {
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	if len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1123Subdomain(name)) > 0 {
		s.fail(ctx, w, http.StatusNotFound, "No such Application: the address must be /apps/NAMESPACE/NAME.")
		return nil, false
	}
	app := &kv1.Application{}
	err := s.apps.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, app)
	switch {
	case err == nil:
		return app, true
	case apierrors.IsNotFound(err):
		s.fail(ctx, w, http.StatusNotFound, fmt.Sprintf("Application %s/%s does not exist (or no longer).", ns, name))
	case apierrors.IsForbidden(err):
		s.fail(ctx, w, http.StatusForbidden, fmt.Sprintf("You may not read Application %s/%s: %s", ns, name, errorText(err)))
	default:
		s.fail(ctx, w, http.StatusBadGateway, fmt.Sprintf("Reading Application %s/%s failed: %s", ns, name, errorText(err)))
	}
	return nil, false
}

// events lists the Application's Events, newest first, at most maxEvents.
func (s *Server) events(ctx context.Context, app *kv1.Application, now time.Time) ([]eventView, string) {
	sel := fields.Set{"involvedObject.kind": "Application", "involvedObject.name": app.Name}.AsSelector().String()
	list, err := s.kube.CoreV1().Events(app.Namespace).List(ctx, metav1.ListOptions{FieldSelector: sel, Limit: 500})
	if err != nil {
		if apierrors.IsForbidden(err) {
			return nil, "Events are not shown: you may not list events in " + app.Namespace + "."
		}
		return nil, "Listing Events failed: " + errorText(err)
	}
	items := slices.DeleteFunc(list.Items, func(e corev1.Event) bool { return e.InvolvedObject.UID != app.UID })
	out := eventsOf(items, now)
	if len(out) > maxEvents {
		out = out[:maxEvents]
	}
	return out, ""
}

// mayPatch asks the API server whether the viewer may patch app: the Sync
// button is shown only then.
func (s *Server) mayPatch(ctx context.Context, app *kv1.Application) bool {
	ok, err := s.may(ctx, authorizationv1.ResourceAttributes{
		Namespace: app.Namespace, Verb: "patch", Group: kv1.GroupVersion.Group, Resource: "applications", Name: app.Name,
	})
	return err == nil && ok
}

// may asks the API server whether the viewer may do what attrs say (a
// SelfSubjectAccessReview).
func (s *Server) may(ctx context.Context, attrs authorizationv1.ResourceAttributes) (bool, error) {
	review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &attrs}}
	res, err := s.kube.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
	if err != nil {
		return false, err
	}
	return res.Status.Allowed, nil
}

// maxFormBytes bounds a posted form's body (Sync now, Approve).
const maxFormBytes = 4 << 10

// serveSync does what `keyless sync --async` does, as the viewer: it sets
// the sync-requested-at annotation, then shows the Application's page,
// which follows the request until the controller reports it.
func (s *Server) serveSync(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.RequestTimeout)
	defer cancel()
	app, ok := s.postedApp(ctx, w, r, "Sync")
	if !ok {
		return
	}
	token, err := s.requestSync(ctx, app)
	if err != nil {
		status := http.StatusBadGateway
		if apierrors.IsForbidden(err) {
			status = http.StatusForbidden
		}
		s.fail(ctx, w, status, fmt.Sprintf("Requesting a sync of %s/%s failed: %s", app.Namespace, app.Name, errorText(err)))
		return
	}
	s.opts.Logger.Info("sync requested", "namespace", app.Namespace, "name", app.Name, "viewer", s.viewer(ctx))
	http.Redirect(w, r, rowOf(app, time.Time{}).Path()+"?requested="+token, http.StatusSeeOther)
}

// postedApp checks a form posted from an Application's page (its size and
// CSRF token; the cross-origin check is secure's) and reads the
// Application, or writes the error page. button names the form's button.
func (s *Server) postedApp(ctx context.Context, w http.ResponseWriter, r *http.Request, button string) (*kv1.Application, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil || !s.csrf.valid(r.PostForm.Get(csrfField)) {
		s.fail(ctx, w, http.StatusForbidden, "The form is stale or did not come from this page: reload the Application's page and press "+button+" again.")
		return nil, false
	}
	return s.getApp(ctx, w, r)
}

// requestSync sets app's sync-requested-at annotation, as the viewer, as
// `keyless sync --async` does, and returns its value.
func (s *Server) requestSync(ctx context.Context, app *kv1.Application) (string, error) {
	token := time.Now().UTC().Format(time.RFC3339Nano)
	patch := client.MergeFrom(app.DeepCopy())
	app.RequestSync(token)
	if err := s.apps.Patch(ctx, app, patch); err != nil {
		return "", err
	}
	return token, nil
}

// errorPage is a failed request's page.
type errorPage struct {
	page
	Message string
	// Detail is shown preformatted under the message (what an approval
	// applied before it failed), when set.
	Detail string
}

func (s *Server) fail(ctx context.Context, w http.ResponseWriter, status int, msg string) {
	s.failWith(ctx, w, status, msg, "")
}

func (s *Server) failWith(ctx context.Context, w http.ResponseWriter, status int, msg, detail string) {
	s.render(w, status, "error.html", errorPage{page: s.pageFor(ctx, http.StatusText(status)), Message: msg, Detail: detail})
}

func (s *Server) render(w http.ResponseWriter, status int, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := templates.ExecuteTemplate(w, name, data); err != nil {
		s.opts.Logger.Info("rendering a page failed", "page", name, "error", err.Error())
	}
}

func (s *Server) pageFor(ctx context.Context, title string) page {
	return page{Title: title, Viewer: s.viewer(ctx)}
}

// viewer is the viewer's username as the API server sees it (a
// SelfSubjectReview), asked until it answers once, then remembered; "" until
// then. The lock is not held across the request: while the API server is
// slow, page loads do not queue behind one another.
func (s *Server) viewer(ctx context.Context) string {
	s.viewerMu.Lock()
	name := s.viewerName
	s.viewerMu.Unlock()
	if name != "" {
		return name
	}
	res, err := s.kube.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			s.opts.Logger.Info("asking who the viewer is failed", "error", errorText(err))
		}
		return ""
	}
	s.viewerMu.Lock()
	defer s.viewerMu.Unlock()
	s.viewerName = res.Status.UserInfo.Username
	return s.viewerName
}

// statusClass is the CSS class of a status word.
func statusClass(s string) string {
	switch s {
	case kv1.SyncStatusSynced, kv1.HealthHealthy, kv1.SyncResultSucceeded, "Current":
		return "ok"
	case kv1.SyncStatusOutOfSync, kv1.HealthProgressing, "InProgress":
		return "warn"
	case kv1.HealthDegraded, kv1.HealthMissing, kv1.SyncResultFailed, "NotFound":
		return "bad"
	}
	return "unknown"
}

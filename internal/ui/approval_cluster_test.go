package ui_test

import (
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/approval"
	"github.com/keyless-cd/keyless/internal/ui"
)

// The out-of-namespace objects of the test's pending approval: a CRD and
// a custom resource of it (a kind not served before the approval), a
// ClusterRole and a ConfigMap of another namespace. The last approval
// held a ClusterRole the render dropped: the approval deletes it.
const (
	pendingObjects = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.example.com}
spec:
  group: example.com
  scope: Cluster
  names: {kind: Gadget, plural: gadgets, singular: gadget, listKind: GadgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
---
apiVersion: example.com/v1
kind: Gadget
metadata: {name: main}
spec: {size: 3}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: ui-approval-reader}
rules:
- {apiGroups: [example.com], resources: [gadgets], verbs: [get, list, watch]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: shared, namespace: team-b}
data: {greeting: hello}
`
	previousObjects = `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: ui-approval-reader}
rules:
- {apiGroups: [example.com], resources: [gadgets], verbs: [get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: ui-approval-old}
rules:
- {apiGroups: [""], resources: [configmaps], verbs: [get]}
`
	pendingRevision  = "1111111111111111111111111111111111111111"
	previousRevision = "0000000000000000000000000000000000000000"
	commitAuthor     = "Dev <dev@example.com>"
)

// TestApprovalPanelAndButton runs keyless ui against the local control
// plane with an Application awaiting the approval of its out-of-namespace
// objects, over HTTP, as three viewers: carol, a namespace admin who may
// patch the Application but write nothing cluster-wide; the commit's author
// (a cluster admin); and another cluster admin. Each page lists the objects
// and the diff; only the last is offered the Approve button; carol's and
// the author's POSTs are refused with nothing applied; the admin's applies
// the objects as them, deletes the dropped one, records the approval and
// requests a sync.
func TestApprovalPanelAndButton(t *testing.T) {
	e := newBrowserEnv(t)
	ctx := t.Context()
	digest := e.pendingApproval("platform")

	e.grant(teamA, "carol", true)
	e.grantConfigMapRead(controlNS, "carol")
	carol, _ := serveUI(t, e.identity(teamA, "carol"), ui.Options{Namespaces: []string{teamA}})
	author, _ := serveUI(t, impersonating(e.cluster.Config, "dev@example.com"), ui.Options{Namespaces: []string{teamA}})
	admin, _ := serveUI(t, impersonating(e.cluster.Config, "approver@example.com"), ui.Options{Namespaces: []string{teamA}})
	page := "/apps/team-a/platform"

	for _, v := range []struct{ who, url, note string }{
		{"carol", carol, "you may not patch"},
		{"the author", author, "four eyes"},
		{"an admin", admin, ""},
	} {
		body := get(t, v.url+page)
		for _, want := range []string{"Awaiting approval", "by a cluster admin", html.EscapeString(commitAuthor), digest,
			"CustomResourceDefinition/gadgets.example.com", "Gadget/main", "ClusterRole/ui-approval-reader", "ConfigMap/shared (namespace team-b)",
			"ClusterRole/ui-approval-old", "deleted by the approval", "former-admin@example.com"} {
			if !strings.Contains(body, want) {
				t.Errorf("%s's page lacks %q", v.who, want)
			}
		}
		if m := regexp.MustCompile(`(?s)<span class="mark" title="changed">~</span> <span class="objname">ClusterRole/ui-approval-reader`).FindString(body); m == "" {
			t.Errorf("%s's page does not mark the ClusterRole changed", v.who)
		}
		diff := regexp.MustCompile(`(?s)<pre class="diff approval-diff"[^>]*>(.*?)</pre>`).FindStringSubmatch(body)
		if diff == nil || !strings.Contains(html.UnescapeString(diff[1]), "+  - watch") {
			t.Errorf("%s's page lacks the approval diff", v.who)
		}
		hasButton := strings.Contains(body, `id="approve"`)
		if hasButton != (v.note == "") {
			t.Errorf("%s: Approve button shown = %v", v.who, hasButton)
		}
		if v.note != "" && !strings.Contains(html.UnescapeString(body), v.note) {
			t.Errorf("%s's page does not say why there is no button (%q):\n%s", v.who, v.note, noteOf(body))
		}
	}

	t.Run("a POST by a viewer without the rights is refused, nothing applied", func(t *testing.T) {
		code, body := approve(t, carol, page, csrfOf(t, get(t, carol+page)), digest)
		if code != http.StatusForbidden || !strings.Contains(body, "forbidden") {
			t.Fatalf("carol's approval: %d\n%s", code, noteOf(body))
		}
		e.assertNothingApproved()
	})
	t.Run("the commit's author may not approve it (four eyes)", func(t *testing.T) {
		code, body := approve(t, author, page, csrfOf(t, get(t, author+page)), digest)
		if code != http.StatusForbidden || !strings.Contains(body, "four eyes") {
			t.Fatalf("the author's approval: %d\n%s", code, noteOf(body))
		}
		e.assertNothingApproved()
	})
	t.Run("a stale form or another digest applies nothing", func(t *testing.T) {
		if code, _ := approve(t, admin, page, "not-the-token", digest); code != http.StatusForbidden {
			t.Errorf("a POST without the CSRF token: %d", code)
		}
		code, body := approve(t, admin, page, csrfOf(t, get(t, admin+page)), "sha256:0000")
		if code != http.StatusConflict || !strings.Contains(body, "reload the page") {
			t.Errorf("a POST of another digest: %d\n%s", code, noteOf(body))
		}
		e.assertNothingApproved()
	})
	t.Run("an admin who did not write it approves with the button", func(t *testing.T) {
		code, body := approve(t, admin, page, csrfOf(t, get(t, admin+page)), digest)
		if code != http.StatusOK || !strings.Contains(body, `id="approved"`) || !strings.Contains(body, "approver@example.com") {
			t.Fatalf("the admin's approval: %d\n%s", code, body)
		}
		for _, want := range []string{"ClusterRole/ui-approval-old deleted", "approval of " + digest + " recorded", `id="follow"`} {
			if !strings.Contains(html.UnescapeString(body), want) {
				t.Errorf("the result page lacks %q", want)
			}
		}
		if err := e.admin.Get(ctx, client.ObjectKey{Name: "ui-approval-reader"}, &rbacv1.ClusterRole{}); err != nil {
			t.Errorf("the ClusterRole was not applied: %v", err)
		}
		gadget := &unstructured.Unstructured{}
		gadget.SetGroupVersionKind(schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Gadget"})
		if err := e.admin.Get(ctx, client.ObjectKey{Name: "main"}, gadget); err != nil {
			t.Errorf("the custom resource of the approved CRD was not applied: %v", err)
		}
		if err := e.admin.Get(ctx, client.ObjectKey{Name: "ui-approval-old"}, &rbacv1.ClusterRole{}); !apierrors.IsNotFound(err) {
			t.Errorf("the ClusterRole the render dropped is still there: %v", err)
		}
		cm := &corev1.ConfigMap{}
		if err := e.admin.Get(ctx, client.ObjectKey{Namespace: controlNS, Name: approval.RecordName(teamA, "platform")}, cm); err != nil {
			t.Fatal(err)
		}
		rec, err := approval.RecordFromConfigMap(cm, teamA, "platform")
		if err != nil || rec.Digest != digest || rec.Approver != "approver@example.com" || rec.SelfApproved || rec.Revision != pendingRevision {
			t.Errorf("the record: %+v, %v", rec, err)
		}
		app := &kv1.Application{}
		if err := e.admin.Get(ctx, client.ObjectKey{Namespace: teamA, Name: "platform"}, app); err != nil || app.Annotations[kv1.SyncRequestedAnnotation] == "" {
			t.Errorf("no sync was requested: %v %v", app.Annotations, err)
		}
	})
}

// pendingApproval creates Application team-a/name awaiting the approval of
// pendingObjects after previousObjects were approved (the controller does
// not run: its status and the stored forms are written here, as the
// controller writes them), and returns the pending digest.
func (e *browserEnv) pendingApproval(name string) string {
	t, ctx := e.t, e.t.Context()
	t.Helper()
	prev, next := approval.NewBundle(objectsOf(t, previousObjects)), approval.NewBundle(objectsOf(t, pendingObjects))
	prevDigest, err := prev.Digest()
	if err != nil {
		t.Fatal(err)
	}
	digest, err := next.Digest()
	if err != nil {
		t.Fatal(err)
	}
	changes, err := approval.Compare(prev, next)
	if err != nil {
		t.Fatal(err)
	}
	since := metav1.NewTime(time.Now().Add(-time.Hour).Truncate(time.Second))
	rec := &approval.Record{Namespace: teamA, Application: name, Digest: prevDigest, Revision: previousRevision,
		Approver: "former-admin@example.com", At: since.Add(-time.Hour), Bundle: prev}
	pending := &approval.Pending{Namespace: teamA, Application: name, Digest: digest, Revision: pendingRevision,
		Author: commitAuthor, Since: since.Time, Bundle: next}
	recCM, err := rec.ConfigMap(controlNS)
	if err != nil {
		t.Fatal(err)
	}
	pendingCM, err := pending.ConfigMap(controlNS)
	if err != nil {
		t.Fatal(err)
	}
	old := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "ui-approval-old"}}
	app := &kv1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: teamA, Name: name}, Spec: kv1.ApplicationSpec{
		Source:     kv1.ApplicationSource{RepoURL: e.git.RepoURL(repo), TargetRevision: "main", Path: "platform", SecretRef: &kv1.LocalObjectReference{Name: "git"}},
		SyncPolicy: &kv1.SyncPolicy{OutOfNamespace: kv1.OutOfNamespaceApprove},
	}}
	for _, o := range []client.Object{recCM, pendingCM, old, app} {
		if err := e.admin.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	app.Status.Approval = &kv1.ApprovalStatus{
		Pending: &kv1.PendingApproval{Revision: pendingRevision, Digest: digest, Author: commitAuthor, Since: since, Objects: next.Refs(),
			Added: changes.Added, Changed: changes.Changed, Removed: changes.Removed, Diff: changes.Diff},
		Approved: &kv1.ApprovedBundle{Digest: prevDigest, Revision: previousRevision, Approver: rec.Approver, At: metav1.NewTime(rec.At)},
	}
	if err := e.admin.Status().Update(ctx, app); err != nil {
		t.Fatal(err)
	}
	return digest
}

// assertNothingApproved: no object of the pending approval exists, the
// dropped one is still there, and the record is the previous one.
func (e *browserEnv) assertNothingApproved() {
	t, ctx := e.t, e.t.Context()
	t.Helper()
	crd := &unstructured.Unstructured{}
	crd.SetGroupVersionKind(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"})
	if err := e.admin.Get(ctx, client.ObjectKey{Name: "gadgets.example.com"}, crd); !apierrors.IsNotFound(err) {
		t.Errorf("the CRD exists (%v): a refused approval applies nothing", err)
	}
	if err := e.admin.Get(ctx, client.ObjectKey{Name: "ui-approval-reader"}, &rbacv1.ClusterRole{}); !apierrors.IsNotFound(err) {
		t.Errorf("the ClusterRole exists (%v): a refused approval applies nothing", err)
	}
	if err := e.admin.Get(ctx, client.ObjectKey{Name: "ui-approval-old"}, &rbacv1.ClusterRole{}); err != nil {
		t.Errorf("the dropped ClusterRole is gone (%v): a refused approval deletes nothing", err)
	}
	cm := &corev1.ConfigMap{}
	if err := e.admin.Get(ctx, client.ObjectKey{Namespace: controlNS, Name: approval.RecordName(teamA, "platform")}, cm); err != nil {
		t.Fatal(err)
	}
	if cm.Data["approver"] != "former-admin@example.com" {
		t.Errorf("the record changed: %v", cm.Data)
	}
}

// grantConfigMapRead lets ServiceAccount team-a/sa read the ConfigMaps of
// ns (the pending objects), and nothing more there.
func (e *browserEnv) grantConfigMapRead(ns, sa string) {
	e.t.Helper()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: sa + "-read", Namespace: ns}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list"}},
	}}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: sa + "-read", Namespace: ns},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: teamA}}}
	for _, o := range []client.Object{role, binding} {
		if err := e.admin.Create(e.t.Context(), o); err != nil {
			e.t.Fatal(err)
		}
	}
}

// impersonating is the cluster admin's configuration acting as user, a
// cluster admin too (group system:masters).
func impersonating(admin *rest.Config, user string) *rest.Config {
	cfg := rest.CopyConfig(admin)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:masters", "system:authenticated"}}
	return cfg
}

// objectsOf parses a YAML stream of objects.
func objectsOf(t *testing.T, stream string) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for doc := range strings.SplitSeq(stream, "\n---\n") {
		o := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &o.Object); err != nil {
			t.Fatal(err)
		}
		out = append(out, o)
	}
	return out
}

func get(t *testing.T, u string) string {
	t.Helper()
	code, body := do(t, http.MethodGet, u, nil)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d\n%s", u, code, body)
	}
	return body
}

// approve posts the Approve form as a browser on the page would.
func approve(t *testing.T, base, page, csrf, digest string) (int, string) {
	t.Helper()
	return do(t, http.MethodPost, base+page+"/approve", url.Values{"csrf": {csrf}, "digest": {digest}})
}

func do(t *testing.T, method, u string, form url.Values) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", strings.TrimSuffix(u, req.URL.Path))
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// csrfOf is the CSRF token of the page's forms (the Sync form is there for
// whoever may patch the Application).
func csrfOf(t *testing.T, body string) string {
	t.Helper()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("the page has no form with a CSRF token")
	}
	return html.UnescapeString(m[1])
}

// noteOf is the page's notes, for a failure message.
func noteOf(body string) string {
	return strings.Join(regexp.MustCompile(`(?s)<p class="note"[^>]*>.*?</p>`).FindAllString(body, -1), "\n")
}

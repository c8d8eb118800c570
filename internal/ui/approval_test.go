package ui

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/approval"
	"github.com/keyless-cd/keyless/internal/approver"
)

func appAwaitingApproval(p string) *kv1.Application {
	return &kv1.Application{
		ObjectMeta: metav1.ObjectMeta{Namespace: "platform", Name: "cert-manager"},
		Spec:       kv1.ApplicationSpec{Source: kv1.ApplicationSource{RepoURL: "https://github.com/o/r"}},
		Status: kv1.ApplicationStatus{Approval: &kv1.ApprovalStatus{
			Pending: &kv1.PendingApproval{Revision: "0123456789abcdef0123456789abcdef01234567", Digest: "sha256:" + p, Author: p,
				Since: metav1.NewTime(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)), Objects: []string{"ClusterRole/" + p, "CustomResourceDefinition/x", "ClusterRole/same"},
				Added: []string{"CustomResourceDefinition/x"}, Changed: []string{"ClusterRole/" + p}, Removed: []string{"ClusterRoleBinding/" + p}, Diff: p},
			Approved: &kv1.ApprovedBundle{Digest: "sha256:" + p, Revision: "89abcdef0123456789abcdef0123456789abcdef", Approver: p,
				At: metav1.NewTime(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)), SelfApproved: true},
		}},
	}
}

func TestApprovalOf(t *testing.T) {
	if approvalOf(&kv1.Application{}, time.Now()) != nil {
		t.Fatal("an Application without status.approval shows an approval")
	}
	v := approvalOf(appAwaitingApproval("p"), time.Date(2025, 1, 2, 5, 4, 5, 0, time.UTC))
	var marks []string
	for _, o := range v.Pending.Objects {
		marks = append(marks, o.Mark+o.Ref)
	}
	if !slices.Equal(marks, []string{"~ClusterRole/p", "+CustomResourceDefinition/x", " ClusterRole/same"}) {
		t.Errorf("marks %q", marks)
	}
	p := v.Pending
	if p.Revision != "0123456" || p.RevisionURL != "https://github.com/o/r/commit/0123456789abcdef0123456789abcdef01234567" ||
		p.Since != "2025-01-02 03:04:05Z" || p.Age != "120m" || !slices.Equal(p.Removed, []string{"ClusterRoleBinding/p"}) {
		t.Errorf("pending %+v", p)
	}
	if a := v.Approved; a.Approver != "p" || !a.SelfApproved || a.At != "2025-01-01 00:00:00Z" || a.Revision != "89abcde" {
		t.Errorf("approved %+v", a)
	}
}

// TestApprovalPanelEscapes renders the approval panel (with the button and
// with a note), the approval's result and its failure with the payloads in
// every field from Git or the cluster.
func TestApprovalPanelEscapes(t *testing.T) {
	now := time.Now()
	for _, p := range payloads {
		app := appAwaitingApproval(p)
		withButton, withNote := approvalOf(app, now), approvalOf(app, now)
		withButton.CanApprove = true
		withNote.Note = p
		rec := &approval.Record{Digest: p, Revision: p, Approver: p, SelfApproved: true}
		pages := []struct {
			name string
			data any
			want []string
		}{
			{"app.html", appPage{page: page{Title: p, Viewer: p}, App: rowOf(app, now), Approval: withButton, CanSync: true, CSRF: "tok"},
				[]string{`id="approve"`, `action="/apps/platform/cert-manager/approve"`, `name="digest"`, `id="approval-diff"`, "self-approved", "deleted by the approval"}},
			{"app.html", appPage{page: page{Title: p, Viewer: p}, App: rowOf(app, now), Approval: withNote}, []string{`id="approval-note"`}},
			{"approved.html", approvedPage{page: page{Title: p, Viewer: p}, App: rowOf(app, now), Record: rec, Store: p, Progress: p, Follow: "/apps/x/y?requested=1"},
				[]string{`id="follow"`, "self-approved"}},
			{"approved.html", approvedPage{page: page{Title: p}, App: rowOf(app, now), Record: rec, SyncError: p}, nil},
			{"error.html", errorPage{page: page{Title: "Forbidden"}, Message: p, Detail: p}, []string{`class="progress"`}},
		}
		for _, pg := range pages {
			var b bytes.Buffer
			if err := templates.ExecuteTemplate(&b, pg.name, pg.data); err != nil {
				t.Fatalf("%s: %v", pg.name, err)
			}
			out := b.String()
			if strings.Contains(out, p) || strings.Contains(out, "<img") || strings.Count(out, "<script") != 1 {
				t.Errorf("%s: the payload %q is not escaped", pg.name, p)
			}
			for _, w := range pg.want {
				if !strings.Contains(out, w) {
					t.Errorf("%s lacks %s", pg.name, w)
				}
			}
			if strings.Contains(out, `id="approve"`) != slices.Contains(pg.want, `id="approve"`) {
				t.Errorf("%s: the Approve button shown where it must not be, or missing", pg.name)
			}
		}
	}
}

// TestAccessCheck: a verb allowed on every name of a resource asks no
// more; refused, each name is asked; a verb naming none (create) refused
// on all names is refused.
func TestAccessCheck(t *testing.T) {
	clusterRoles := schema.GroupResource{Group: "rbac.authorization.k8s.io", Resource: "clusterroles"}
	configMaps := schema.GroupResource{Resource: "configmaps"}
	type rule struct {
		verb, resource, namespace, name string
	}
	check := func(allowed ...rule) (string, []rule) {
		c := &accessCheck{}
		c.add("patch", clusterRoles, "", "a", "ClusterRole/a")
		c.add("patch", clusterRoles, "", "b", "ClusterRole/b")
		c.add("patch", configMaps, "kube-system", "x", "ConfigMap/x (namespace kube-system)")
		c.add("create", configMaps, "keyless-system", "", "ConfigMaps in keyless-system")
		var asked []rule
		denied, err := c.run(t.Context(), func(_ context.Context, a authorizationv1.ResourceAttributes) (bool, error) {
			r := rule{a.Verb, a.Resource, a.Namespace, a.Name}
			asked = append(asked, r)
			return slices.Contains(allowed, r), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return denied, asked
	}
	denied, asked := check(rule{"patch", "clusterroles", "", ""}, rule{"patch", "configmaps", "kube-system", "x"}, rule{"create", "configmaps", "keyless-system", ""})
	if denied != "" || len(asked) != 4 {
		t.Errorf("all allowed: denied %q after %v", denied, asked)
	}
	denied, asked = check(rule{"patch", "clusterroles", "", "a"})
	if denied != "patch ClusterRole/b" || len(asked) != 3 {
		t.Errorf("b refused: denied %q after %v", denied, asked)
	}
	denied, _ = check(rule{"patch", "clusterroles", "", ""}, rule{"patch", "configmaps", "kube-system", ""})
	if denied != "create ConfigMaps in keyless-system" {
		t.Errorf("create refused: denied %q", denied)
	}
	c := &accessCheck{}
	c.add("patch", clusterRoles, "", "a", "ClusterRole/a")
	boom := errors.New("boom")
	if _, err := c.run(t.Context(), func(context.Context, authorizationv1.ResourceAttributes) (bool, error) { return false, boom }); !errors.Is(err, boom) {
		t.Errorf("a failed review: %v", err)
	}
}

func TestCRDsOf(t *testing.T) {
	crd := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "gadgets.example.com"},
		"spec":     map[string]any{"group": "example.com", "scope": "Namespaced", "names": map[string]any{"kind": "Gadget", "plural": "gadgets"}}}}
	got := crdsOf([]*unstructured.Unstructured{crd})
	want := crdResource{resource: schema.GroupResource{Group: "example.com", Resource: "gadgets"}, namespaced: true}
	if len(got) != 1 || got[schema.GroupKind{Group: "example.com", Kind: "Gadget"}] != want {
		t.Errorf("crdsOf = %+v", got)
	}
}

func TestStillPending(t *testing.T) {
	app := appAwaitingApproval("p")
	if err := stillPending(app, "sha256:p"); err != nil {
		t.Errorf("the reviewed digest: %v", err)
	}
	if err := stillPending(app, "sha256:q"); !errors.Is(err, approver.ErrStale) {
		t.Errorf("another digest: %v, want ErrStale", err)
	}
	app.Status.Approval.Pending = nil
	if err := stillPending(app, "sha256:p"); !errors.Is(err, approver.ErrNothingPending) {
		t.Errorf("nothing pending: %v, want ErrNothingPending", err)
	}
}

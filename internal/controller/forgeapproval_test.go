package controller

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

// TestApprovedWhenApplied: the applied revision's recorded approval is
// reused under the same spec; a new revision or a changed spec asks the
// forge again.
func TestApprovedWhenApplied(t *testing.T) {
	sha := "0123456789abcdef0123456789abcdef01234567"
	app := &kv1.Application{ObjectMeta: metav1.ObjectMeta{Generation: 3}, Status: kv1.ApplicationStatus{
		LastAppliedRevision: sha, ObservedGeneration: 3,
		History: []kv1.SyncRecord{{Revision: sha, Result: kv1.SyncResultSucceeded, Approvers: []string{"bob", "carol"}, PullRequest: "#7"}},
	}}
	if a, ok := approvedWhenApplied(app, sha); !ok || len(a.Approvers) != 2 || a.Request != "#7" {
		t.Errorf("the applied, approved revision: %+v %v", a, ok)
	}
	if _, ok := approvedWhenApplied(app, "1123456789abcdef0123456789abcdef01234567"); ok {
		t.Error("another revision reused the approval")
	}
	app.Generation = 4
	if _, ok := approvedWhenApplied(app, sha); ok {
		t.Error("a changed spec (another rule?) reused the approval")
	}
	app.Generation = 3
	app.Status.History[0].Approvers = nil
	if _, ok := approvedWhenApplied(app, sha); ok {
		t.Error("a revision applied without approvers (before the rule) counted as approved")
	}
}

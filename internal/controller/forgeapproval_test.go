package controller

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/egress"
	"github.com/keyless-cd/keyless/internal/forge"
)

// TestForgeAskedOncePerCommitAndToken: 50 Applications asking about the
// same commit under the same rule with the same token at the same time
// make one request to the forge and all get its answer; another token
// (another identity, which may see less) asks for itself.
func TestForgeAskedOncePerCommitAndToken(t *testing.T) {
	f := newForgeApprovals(egress.Options{})
	key := approvalKey{repo: "https://git.example/team/mono.git", sha: "0123456789abcdef0123456789abcdef01234567", branch: "main", provider: "gitea", min: 2}
	var calls atomic.Int32
	release := make(chan struct{})
	ask := func() (forge.Approval, error) {
		calls.Add(1)
		<-release
		return forge.Approval{Approvers: []string{"bob", "carol"}, Request: "#7"}, nil
	}
	var wg sync.WaitGroup
	var entered atomic.Int32
	answers := make([]forge.Approval, 50)
	for i := range answers {
		wg.Go(func() {
			token := "team-token"
			if i == 49 {
				token = "another-token"
			}
			entered.Add(1)
			answers[i], _ = f.ask(key, []byte(token), ask)
		})
	}
	for entered.Load() < 50 || calls.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // the last to enter are inside ask
	close(release)
	wg.Wait()
	if got := calls.Load(); got != 2 {
		t.Errorf("the forge was asked %d times, want 2 (one per token)", got)
	}
	for i, a := range answers {
		if len(a.Approvers) != 2 || a.Request != "#7" {
			t.Errorf("Application %d got %+v", i, a)
		}
	}
}

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

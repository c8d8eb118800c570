package controller_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/gitserver"
	"github.com/keyless-cd/keyless/internal/ledger"
	"github.com/keyless-cd/keyless/internal/webhook"
)

// TestGiteaApprovalsGateTheApply: with spec.source.verify.approvals
// (two approvers, provider gitea) and only a read-only token, a real Gitea
// decides what is applied: (c) a direct push is refused; (a) a pull request
// two other people approved is applied, its approvers in history, the
// Synced Event and the ledger; (b) a pull request approved by the author of
// its commit is refused; (d) a pull request with a commit pushed after the
// approvals is refused — each refusal naming what is missing, the last
// approved state left running.
func TestGiteaApprovalsGateTheApply(t *testing.T) {
	f := newForgeEnv(t)
	readLedger := withLedger(t, f.env)
	ctx := t.Context()
	var people [3]gitserver.GiteaPerson
	for i, login := range []string{"alice", "bob", "carol"} {
		p, err := f.gitea.CreateUser(ctx, f.repo, login)
		if err != nil {
			t.Fatal(err)
		}
		people[i] = p
	}
	alice, bob, carol := people[0], people[1], people[2]
	token, err := f.gitea.ReadToken(ctx, "cluster-approvals")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.admin.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "gitea-approvals", Namespace: appNS,
		Labels: map[string]string{kv1.CredentialLabel: kv1.CredentialForge}, Annotations: map[string]string{kv1.GitHostAnnotation: "127.0.0.1"}},
		StringData: map[string]string{kv1.CommitStatusTokenKey: token}}); err != nil {
		t.Fatal(err)
	}
	commit := func(branch, image string, author gitserver.GiteaPerson) string {
		t.Helper()
		sig := author.Signature()
		sig.When = time.Now()
		sha, err := f.gitea.Commit(ctx, f.repo, gitserver.Commit{Branch: branch, Files: manifests(image, "hello"), Message: image, Author: sig})
		if err != nil {
			t.Fatal(err)
		}
		return sha
	}
	merge := func(n int64) string {
		t.Helper()
		sha, err := f.gitea.Merge(ctx, f.repo, gitserver.GiteaUser, n)
		if err != nil {
			t.Fatal(err)
		}
		return sha
	}
	open := func(branch, by string) int64 {
		t.Helper()
		n, err := f.gitea.OpenPull(ctx, f.repo, by, branch, "main", branch)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	approve := func(n int64, who ...gitserver.GiteaPerson) {
		t.Helper()
		for _, p := range who {
			if err := f.gitea.Approve(ctx, f.repo, p.Login, n); err != nil {
				t.Fatal(err)
			}
		}
	}
	refused := func(sha, says string) {
		t.Helper()
		app := f.waitApp("web", "ApprovalMissing at "+kv1.ShortSHA(sha), 60*time.Second, func(a *kv1.Application) bool {
			return a.Status.LastAttemptedRevision == sha && strings.Contains(condition(a, kv1.ReadyCondition), kv1.ReasonApprovalMissing)
		})
		msg := condition(app, kv1.ReadyCondition)
		if !strings.Contains(msg, says) {
			t.Errorf("Ready: %s\nwant it to say %q", msg, says)
		}
		t.Log(msg)
	}

	t.Log("(c) a direct push to main: refused, nothing applied")
	direct := commit("main", "registry.example.com/web:1.0", alice)
	f.startController(time.Hour)
	if err := f.gitea.AddWebhook(ctx, f.repo, f.hookURL+"/hooks/"+webhook.GitHub+"/"+appNS, "gitea-hook-secret-0123456789"); err != nil {
		t.Fatal(err)
	}
	app := &kv1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: appNS},
		Spec: kv1.ApplicationSpec{
			Source: kv1.ApplicationSource{RepoURL: f.gitea.RepoURL(f.repo), TargetRevision: "main", Path: "deploy",
				SecretRef: &kv1.LocalObjectReference{Name: "gitea-git"},
				Verify: &kv1.VerifySource{Approvals: &kv1.ForgeApprovals{MinApprovers: 2, Provider: kv1.ForgeGitea,
					SecretRef: kv1.LocalObjectReference{Name: "gitea-approvals"}}}},
			SyncPolicy: &kv1.SyncPolicy{Automated: &kv1.AutomatedSyncPolicy{Prune: true, SelfHeal: true}},
			// An hour: anything sooner is Gitea's webhook.
			Interval: &metav1.Duration{Duration: time.Hour},
		},
	}
	if err := f.admin.Create(ctx, app); err != nil {
		t.Fatal(err)
	}
	refused(direct, "did not reach main through a merged pull/merge request")
	if a := f.app("web"); a.Status.LastAppliedRevision != "" {
		t.Fatalf("a direct push was applied: %s", a.Status.LastAppliedRevision)
	}

	t.Log("(a) alice's pull request, approved by bob and carol, merged: applied, approvers recorded")
	commit("web-2", "registry.example.com/web:2.0", alice)
	pr := open("web-2", alice.Login)
	approve(pr, bob, carol)
	approved := merge(pr)
	app = f.waitApp("web", "2.0 applied", 60*time.Second, func(a *kv1.Application) bool { return ready(a) && a.Status.LastAppliedRevision == approved })
	if img := f.image(); img != "registry.example.com/web:2.0" {
		t.Fatalf("image %s, want 2.0", img)
	}
	h := app.Status.History[0]
	if !slices.Equal(h.Approvers, []string{"bob", "carol"}) || !strings.Contains(h.PullRequest, "/pulls/1") {
		t.Errorf("history[0] approvers %v in %q: want bob and carol in pull request 1", h.Approvers, h.PullRequest)
	}
	f.waitEvent("web", kv1.ReasonSynced, 10*time.Second, "approved by bob, carol")
	f.waitEvent("web", kv1.ReasonChangeApproved, 10*time.Second, "bob, carol")
	records := readLedger()
	if rec := ledgerRecord(records, ledger.KindApproval, "web"); rec == nil || rec.Revision != approved || !slices.Equal(rec.Approvers, []string{"bob", "carol"}) {
		t.Errorf("ledger approval record %+v: want bob and carol at %s", rec, kv1.ShortSHA(approved))
	}
	if rec := ledgerRecord(records, ledger.KindSync, "web"); rec == nil || !slices.Equal(rec.Approvers, []string{"bob", "carol"}) {
		t.Errorf("ledger sync record %+v: want the approvers", rec)
	}

	t.Log("(b) a pull request bob opened with alice's commit, approved by alice and carol: alice's approval does not count")
	commit("web-3", "registry.example.com/web:3.0", alice)
	pr = open("web-3", bob.Login)
	approve(pr, alice, carol)
	refused(merge(pr), "alice is an author of the change")
	if img := f.image(); img != "registry.example.com/web:2.0" {
		t.Fatalf("image %s after a self-approved merge, want the last approved 2.0", img)
	}

	t.Log("(d) approved by bob and carol, then a commit pushed after the approvals: refused")
	first := commit("web-4", "registry.example.com/web:4.0", alice)
	pr = open("web-4", alice.Login)
	approve(pr, bob, carol)
	late := commit("web-4", "registry.example.com/web:4.1", alice)
	if err := f.gitea.WaitPullHead(ctx, f.repo, pr, late); err != nil {
		t.Fatal(err)
	}
	refused(merge(pr), "approved "+kv1.ShortSHA(first)+", not the final head")
	if img := f.image(); img != "registry.example.com/web:2.0" {
		t.Fatalf("image %s after a stale-approved merge, want the last approved 2.0", img)
	}
	if a := f.app("web"); a.Status.LastAppliedRevision != approved {
		t.Fatalf("last applied %s, want the approved %s", kv1.ShortSHA(a.Status.LastAppliedRevision), kv1.ShortSHA(approved))
	}
}

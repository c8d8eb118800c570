package forge

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

const (
	head = "1111111111111111111111111111111111111111"
	old  = "2222222222222222222222222222222222222222"
)

// fakeAPI answers GETs of the documented paths (escaped, query ignored)
// with canned JSON and records what was asked, with which token header.
type fakeAPI struct {
	srv    *httptest.Server
	mu     sync.Mutex
	asked  []string
	tokens []string
}

func newFakeAPI(t *testing.T, tokenHeader string, answers map[string]string) *fakeAPI {
	t.Helper()
	f := &fakeAPI{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.asked = append(f.asked, r.Method+" "+r.URL.EscapedPath())
		f.tokens = append(f.tokens, r.Header.Get(tokenHeader))
		f.mu.Unlock()
		body, ok := answers[r.URL.EscapedPath()]
		if !ok || r.Method != http.MethodGet {
			http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// TestGitHubChangeRequestShapes: GitHub's documented endpoints — pull
// requests associated with a commit, the pull request (merged_by), its
// reviews and commits — decide who approved; the latest review per person
// counts, a dismissed or older-head approval does not.
func TestGitHubChangeRequestShapes(t *testing.T) {
	api := newFakeAPI(t, "Authorization", map[string]string{
		// https://docs.github.com/en/rest/commits/commits#list-pull-requests-associated-with-a-commit
		"/api/v3/repos/team-a/web/commits/" + sha + "/pulls": `[
		  {"number": 8, "html_url": "https://github.example/team-a/web/pull/8", "user": {"login": "mallory"}, "merged_at": null,
		   "merge_commit_sha": "` + sha + `", "head": {"sha": "` + old + `"}, "base": {"ref": "main"}},
		  {"number": 7, "html_url": "https://github.example/team-a/web/pull/7", "user": {"login": "alice"}, "merged_at": "2026-12-07T09:00:00Z",
		   "merge_commit_sha": "` + sha + `", "head": {"sha": "` + head + `"}, "base": {"ref": "main"}}]`,
		// https://docs.github.com/en/rest/pulls/pulls#get-a-pull-request
		"/api/v3/repos/team-a/web/pulls/7": `{"number": 7, "html_url": "https://github.example/team-a/web/pull/7", "user": {"login": "alice"},
		  "merged": true, "merged_at": "2026-12-07T09:00:00Z", "merged_by": {"login": "mona"}, "merge_commit_sha": "` + sha + `",
		  "head": {"sha": "` + head + `"}, "base": {"ref": "main"}}`,
		// https://docs.github.com/en/rest/pulls/reviews#list-reviews-for-a-pull-request
		"/api/v3/repos/team-a/web/pulls/7/reviews": `[
		  {"id": 1, "user": {"login": "bob"}, "state": "APPROVED", "commit_id": "` + head + `"},
		  {"id": 2, "user": {"login": "carol"}, "state": "APPROVED", "commit_id": "` + old + `"},
		  {"id": 3, "user": {"login": "carol"}, "state": "COMMENTED", "commit_id": "` + head + `"},
		  {"id": 4, "user": {"login": "dave"}, "state": "APPROVED", "commit_id": "` + head + `"},
		  {"id": 5, "user": {"login": "dave"}, "state": "DISMISSED", "commit_id": "` + head + `"},
		  {"id": 6, "user": {"login": "mona"}, "state": "APPROVED", "commit_id": "` + head + `"}]`,
		// https://docs.github.com/en/rest/pulls/pulls#list-commits-on-a-pull-request
		"/api/v3/repos/team-a/web/pulls/7/commits": `[
		  {"sha": "` + head + `", "author": {"login": "alice"}, "commit": {"author": {"name": "Alice", "email": "alice@example.com"}}}]`,
	})
	c := newClient(t, kv1.ForgeGitHub, api.srv.URL+"/team-a/web.git", api.srv.URL+"/api/v3")
	cr, err := c.ChangeRequest(t.Context(), sha, "main")
	if err != nil {
		t.Fatal(err)
	}
	if cr.Number != 7 || cr.Author != "alice" || cr.Merger != "mona" || cr.Head != head {
		t.Errorf("change request %+v: want #7 by alice, merged by mona, head %s", cr, head)
	}
	for _, tok := range api.tokens {
		if tok != "Bearer s3cr3t" {
			t.Errorf("Authorization %q, want the token as GitHub documents it", tok)
		}
	}
	a, err := cr.Check(sha, "main", 1)
	if err != nil || !slices.Equal(a.Approvers, []string{"bob"}) || a.Request != "https://github.example/team-a/web/pull/7" {
		t.Errorf("Check(1) = %+v, %v: want bob alone counted", a, err)
	}
	_, err = cr.Check(sha, "main", 2)
	if !errors.Is(err, ErrApprovalMissing) {
		t.Fatalf("Check(2) = %v, want ErrApprovalMissing", err)
	}
	for _, want := range []string{"1 of 2", "carol approved 2222222, not the final head 1111111", "dave's approval was dismissed", "mona merged it"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q: want it to say %q", err, want)
		}
	}

	t.Log("merged into another branch: not how it reached main")
	if _, err := c.ChangeRequest(t.Context(), sha, "release"); !errors.Is(err, ErrApprovalMissing) {
		t.Errorf("into release: %v, want ErrApprovalMissing", err)
	}
}

// TestGitLabChangeRequestShapes: GitLab's documented endpoints — merge
// requests of a commit, approvals (approved_at), versions (when the final
// head was pushed) and commits (authors by name and e-mail) — decide who
// approved.
func TestGitLabChangeRequestShapes(t *testing.T) {
	project := "/api/v4/projects/group%2Fsub%2Fweb"
	api := newFakeAPI(t, "Private-Token", map[string]string{
		// https://docs.gitlab.com/api/commits/#list-merge-requests-associated-with-a-commit
		project + "/repository/commits/" + sha + "/merge_requests": `[
		  {"iid": 3, "web_url": "https://gitlab.example/group/sub/web/-/merge_requests/3", "state": "merged", "target_branch": "main",
		   "sha": "` + head + `", "merge_commit_sha": null, "squash_commit_sha": "` + sha + `",
		   "author": {"username": "alice", "name": "Alice Author"}, "merge_user": {"username": "maint"}}]`,
		// https://docs.gitlab.com/api/merge_request_approvals/#retrieve-approval-state-for-a-merge-request
		project + "/merge_requests/3/approvals": `{"approved_by": [
		  {"user": {"username": "bob", "name": "Bob"}, "approved_at": "2026-12-07T10:00:00Z"},
		  {"user": {"username": "carol", "name": "Carol"}, "approved_at": "2026-12-07T08:00:00Z"},
		  {"user": {"username": "erin", "name": "Alice Author"}, "approved_at": "2026-12-07T10:00:00Z"},
		  {"user": {"username": "frank", "name": "Frank"}}]}`,
		// https://docs.gitlab.com/api/merge_requests/#get-merge-request-diff-versions
		project + "/merge_requests/3/versions": `[
		  {"id": 2, "head_commit_sha": "` + head + `", "created_at": "2026-12-07T09:00:00Z"},
		  {"id": 1, "head_commit_sha": "` + old + `", "created_at": "2026-12-07T07:00:00Z"}]`,
		// https://docs.gitlab.com/api/merge_requests/#get-single-merge-request-commits
		project + "/merge_requests/3/commits": `[
		  {"id": "` + head + `", "author_name": "Alice Author", "author_email": "alice@example.com"}]`,
	})
	c := newClient(t, kv1.ForgeGitLab, api.srv.URL+"/group/sub/web.git", api.srv.URL+"/api/v4")
	cr, err := c.ChangeRequest(t.Context(), sha, "main")
	if err != nil {
		t.Fatal(err)
	}
	if cr.Merger != "maint" || cr.Author != "alice" || cr.Head != head {
		t.Errorf("change request %+v", cr)
	}
	for _, tok := range api.tokens {
		if tok != "s3cr3t" {
			t.Errorf("PRIVATE-TOKEN %q, want the token", tok)
		}
	}
	_, err = cr.Check(sha, "main", 2)
	if !errors.Is(err, ErrApprovalMissing) {
		t.Fatalf("Check(2) = %v, want ErrApprovalMissing", err)
	}
	for _, want := range []string{"1 of 2", "counted: bob", "carol approved before the final head was pushed", "erin is an author", "frank approved before"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q: want it to say %q", err, want)
		}
	}
}

// TestGiteaNoPullRequest: Gitea answers 404 for a commit no merged pull
// request produced — a refusal only when the token can read the
// repository; a token that cannot, or an outage, is an error to retry.
func TestGiteaNoPullRequest(t *testing.T) {
	readable := newFakeAPI(t, "Authorization", map[string]string{"/api/v1/repos/team-a/web": `{"id": 1}`})
	c := newClient(t, kv1.ForgeGitea, readable.srv.URL+"/team-a/web.git", "")
	_, err := c.ChangeRequest(t.Context(), sha, "main")
	if !errors.Is(err, ErrApprovalMissing) || !strings.Contains(err.Error(), "direct push") {
		t.Errorf("no pull request: %v, want ErrApprovalMissing naming a direct push", err)
	}
	if want := []string{"GET /api/v1/repos/team-a/web/commits/" + sha + "/pull", "GET /api/v1/repos/team-a/web"}; !slices.Equal(readable.asked, want) {
		t.Errorf("asked %v, want %v", readable.asked, want)
	}
	unreadable := newFakeAPI(t, "Authorization", nil)
	c = newClient(t, kv1.ForgeGitea, unreadable.srv.URL+"/team-a/web.git", "")
	if _, err := c.ChangeRequest(t.Context(), sha, "main"); err == nil || errors.Is(err, ErrApprovalMissing) || !strings.Contains(err.Error(), "cannot read") {
		t.Errorf("unreadable repository: %v, want an error to retry, not a refusal", err)
	}
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) }))
	t.Cleanup(down.Close)
	c = newClient(t, kv1.ForgeGitea, down.URL+"/team-a/web.git", "")
	if _, err := c.ChangeRequest(t.Context(), sha, "main"); err == nil || errors.Is(err, ErrApprovalMissing) {
		t.Errorf("outage: %v, want an error to retry, never an approval or a refusal", err)
	}
}

// TestChangeRequestBounds: endless pages and oversized answers are
// ErrTooLarge, not read on.
func TestChangeRequestBounds(t *testing.T) {
	pr := `{"number": 1, "merged": true, "merge_commit_sha": "` + sha + `", "head": {"sha": "` + head + `"}, "base": {"ref": "main"}, "user": {"login": "a"}}`
	page := "[" + strings.TrimSuffix(strings.Repeat(`{"id": 1, "user": {"login": "b"}, "state": "APPROVED", "commit_id": "`+head+`"},`, pageSize), ",") + "]"
	endless := newFakeAPI(t, "Authorization", map[string]string{
		"/api/v1/repos/o/r/commits/" + sha + "/pull": pr,
		"/api/v1/repos/o/r/pulls/1/reviews":          page,
	})
	c := newClient(t, kv1.ForgeGitea, endless.srv.URL+"/o/r", "")
	if _, err := c.ChangeRequest(t.Context(), sha, "main"); !errors.Is(err, ErrTooLarge) {
		t.Errorf("endless reviews: %v, want ErrTooLarge", err)
	}
	if n := len(endless.asked); n != 1+MaxPages {
		t.Errorf("%d requests, want the pull request and %d pages", n, MaxPages)
	}
	huge := newFakeAPI(t, "Authorization", map[string]string{
		"/api/v1/repos/o/r/commits/" + sha + "/pull": `{"title": "` + strings.Repeat("x", MaxAPIResponse) + `"}`,
	})
	c = newClient(t, kv1.ForgeGitea, huge.srv.URL+"/o/r", "")
	if _, err := c.ChangeRequest(t.Context(), sha, "main"); !errors.Is(err, ErrTooLarge) {
		t.Errorf("huge answer: %v, want ErrTooLarge", err)
	}
}

// TestCheck: who counts as an approver of a change request.
func TestCheck(t *testing.T) {
	approve := func(login, commit string) Review {
		return Review{By: Person{Login: login}, State: ReviewApproved, Commit: commit}
	}
	cases := map[string]struct {
		cr      ChangeRequest
		min     int
		want    []string
		refusal string
	}{
		"two others on the head": {ChangeRequest{Author: "alice", Merger: "mona", Head: head, LinksAuthors: true,
			CommitAuthors: []Person{{Login: "alice"}}, Reviews: []Review{approve("bob", head), approve("carol", head)}}, 2, []string{"bob", "carol"}, ""},
		"the opener approving": {ChangeRequest{Author: "alice", Head: head,
			Reviews: []Review{approve("Alice", head), approve("bob", head)}}, 2, []string{"bob"}, "Alice is an author"},
		"a commit author approving": {ChangeRequest{Author: "bob", Head: head, LinksAuthors: true,
			CommitAuthors: []Person{{Login: "dave"}}, Reviews: []Review{approve("dave", head), approve("carol", head)}}, 2, []string{"carol"}, "dave is an author"},
		"the merger approving": {ChangeRequest{Author: "alice", Merger: "bob", Head: head,
			Reviews: []Review{approve("bob", head)}}, 1, nil, "bob merged it"},
		"changes requested after approving": {ChangeRequest{Author: "alice", Head: head,
			Reviews: []Review{approve("bob", head), {By: Person{Login: "bob"}, State: ReviewChangesRequested, Commit: head}}}, 1, nil, "bob requested changes"},
		"approving after requesting changes": {ChangeRequest{Author: "alice", Head: head,
			Reviews: []Review{{By: Person{Login: "bob"}, State: ReviewChangesRequested, Commit: old}, approve("bob", head)}}, 1, []string{"bob"}, ""},
		"stale by the forge's mark": {ChangeRequest{Author: "alice", Head: head,
			Reviews: []Review{{By: Person{Login: "bob"}, State: ReviewApproved, Commit: head, Stale: true}}}, 1, nil, "bob approved"},
		"twice by one person counts once": {ChangeRequest{Author: "alice", Head: head,
			Reviews: []Review{approve("bob", head), approve("bob", head)}}, 2, []string{"bob"}, "1 of 2"},
		"an author the forge links to no user": {ChangeRequest{Author: "alice", Head: head, LinksAuthors: true,
			CommitAuthors: []Person{{Name: "Alice", Email: "alice@home.example"}}, Reviews: []Review{approve("bob", head)}}, 1, []string{"bob"}, "is no user of the forge"},
		"no approvals": {ChangeRequest{Author: "alice", Head: head}, 1, nil, "0 of 1"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			a, err := tc.cr.Check(sha, "main", tc.min)
			if !slices.Equal(a.Approvers, tc.want) {
				t.Errorf("approvers %v, want %v", a.Approvers, tc.want)
			}
			switch {
			case tc.refusal == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.refusal != "" && (!errors.Is(err, ErrApprovalMissing) || !strings.Contains(err.Error(), tc.refusal)):
				t.Errorf("err %v, want ErrApprovalMissing saying %q", err, tc.refusal)
			}
		})
	}
}

// FuzzChangeRequestAnswers: whatever a forge answers for the pull request,
// its reviews and its commits (Gitea's and GitHub's shapes), reading it
// never panics, and no one counted as an approver is the request's author,
// its merger or a commit's author. (The answers are decoded as the client
// decodes them; the HTTP path is TestChangeRequestBounds's.)
func FuzzChangeRequestAnswers(f *testing.F) {
	f.Add(`{"number": 1, "merged": true, "merge_commit_sha": "`+sha+`", "user": {"login": "alice"}, "merged_by": {"login": "mona"}, "head": {"sha": "`+head+`"}, "base": {"ref": "main"}}`,
		`[{"id": 1, "user": {"login": "bob"}, "state": "APPROVED", "commit_id": "`+head+`"}, {"id": 2, "user": {"login": "alice"}, "state": "APPROVED", "commit_id": "`+head+`"}]`,
		`[{"sha": "`+head+`", "author": {"login": "carol"}, "commit": {"author": {"name": "Carol", "email": "carol@example.com"}}}]`)
	f.Add(`{}`, `[]`, `[{"author": null}]`)
	f.Add(`{"merged": true, "merge_commit_sha": "`+sha+`"}`, `[{"user": null, "state": "APPROVED"}]`, `null`)
	f.Fuzz(func(t *testing.T, a, b, c string) {
		var (
			pr      pullRequest
			reviews []pullReview
			commits []pullCommit
		)
		if json.Unmarshal([]byte(a), &pr) != nil || json.Unmarshal([]byte(b), &reviews) != nil || json.Unmarshal([]byte(c), &commits) != nil {
			return
		}
		cr := requestOf(pr)
		cr.add(reviews, commits)
		got, err := cr.Check(sha, "main", 1)
		if err == nil && len(got.Approvers) == 0 {
			t.Fatalf("approved with no approver: %+v", cr)
		}
		for _, who := range got.Approvers {
			excluded := []Person{{Login: cr.Author}, {Login: cr.Merger}}
			for _, p := range append(excluded, cr.CommitAuthors...) {
				if p.Login != "" && strings.EqualFold(p.Login, who) {
					t.Fatalf("%q counted as an approver, yet is %+v of %+v", who, p, cr)
				}
			}
		}
	})
}

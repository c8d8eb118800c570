package forge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/egress"
)

// Bounds of what is read of a forge's answers about a change request.
const (
	// MaxAPIResponse is the largest answer read (one page).
	MaxAPIResponse = 4 << 20
	// MaxPages is how many pages of reviews or commits are read; a request
	// with more is not decided (ErrApprovalMissing says so).
	MaxPages = 10
	pageSize = 50
)

// ErrTooLarge is a forge answer past MaxAPIResponse or MaxPages.
var ErrTooLarge = errors.New("forge answer too large")

// ChangeRequest returns the merged pull/merge request that produced sha on
// branch ("" for any branch). A commit no merged request produced is
// refused with NoChangeRequest (ErrApprovalMissing). Anything else that
// fails (a refused token, an outage) is an error without that mark: the
// caller retries, never taking it for an approval.
func (c *Client) ChangeRequest(ctx context.Context, sha, branch string) (*ChangeRequest, error) {
	if !isSHA(sha) {
		return nil, fmt.Errorf("%w: %q is not a commit SHA", ErrConfig, sha)
	}
	var (
		cr  *ChangeRequest
		err error
	)
	switch c.provider {
	case kv1.ForgeGitea, kv1.ForgeForgejo:
		cr, err = c.giteaRequest(ctx, sha, branch)
	case kv1.ForgeGitHub:
		cr, err = c.githubRequest(ctx, sha, branch)
	case kv1.ForgeGitLab:
		cr, err = c.gitlabRequest(ctx, sha, branch)
	default:
		return nil, fmt.Errorf("%w: unknown provider %q", ErrConfig, c.provider)
	}
	if err != nil && !errors.Is(err, ErrApprovalMissing) {
		return nil, fmt.Errorf("asking %s how %s reached %s: %w", c.api.Host, kv1.ShortSHA(sha), orNone(branch), err)
	}
	return cr, err
}

// get reads one JSON answer of the API at path (relative to the API base,
// already escaped) into out.
func (c *Client) get(ctx context.Context, path string, query url.Values, out any) error {
	u := c.api.JoinPath()
	u.RawPath = strings.TrimSuffix(c.api.EscapedPath(), "/") + path
	u.Path, _ = url.PathUnescape(u.RawPath)
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "keyless")
	c.authorize(req)
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		// Only the status code: the answer is not echoed into Events.
		return fmt.Errorf("GET %s: %w", path, &egress.StatusError{Code: resp.StatusCode})
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxAPIResponse+1))
	if err != nil {
		return fmt.Errorf("GET %s: reading the answer: %w", path, err)
	}
	if len(body) > MaxAPIResponse {
		return fmt.Errorf("GET %s: %w: more than %d bytes", path, ErrTooLarge, MaxAPIResponse)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

// pages reads a paginated list at path, page by page of pageSize (the
// forge's own parameter names), into all; more than MaxPages is ErrTooLarge.
func pages[T any](ctx context.Context, c *Client, path string, sizeParam string, extra ...string) ([]T, error) {
	var all []T
	for page := 1; page <= MaxPages; page++ {
		var got []T
		q := url.Values{"page": {strconv.Itoa(page)}, sizeParam: {strconv.Itoa(pageSize)}}
		for i := 0; i+1 < len(extra); i += 2 {
			q.Set(extra[i], extra[i+1])
		}
		if err := c.get(ctx, path, q, &got); err != nil {
			return nil, err
		}
		all = append(all, got...)
		if len(got) < pageSize {
			return all, nil
		}
	}
	return nil, fmt.Errorf("GET %s: %w: more than %d pages of %d", path, ErrTooLarge, MaxPages, pageSize)
}

// isNotFound reports a 404 answer.
func isNotFound(err error) bool {
	var se *egress.StatusError
	return errors.As(err, &se) && se.Code == http.StatusNotFound
}

// repoPath is /repos/owner/name (Gitea, Forgejo, GitHub).
func (c *Client) repoPath() string {
	owner, name, _ := strings.Cut(c.project, "/")
	return "/repos/" + url.PathEscape(owner) + "/" + url.PathEscape(name)
}

// user is a forge user as Gitea and GitHub name one.
type user struct {
	Login    string `json:"login"`
	FullName string `json:"full_name"`
	Name     string `json:"name"`
	Email    string `json:"email"`
}

func (u *user) person() Person {
	if u == nil {
		return Person{}
	}
	return Person{Login: u.Login, Name: cmpOr(u.FullName, u.Name), Email: u.Email}
}

func (u *user) login() string {
	if u == nil {
		return ""
	}
	return u.Login
}

// pullRequest is the part of Gitea's and GitHub's pull request read here.
type pullRequest struct {
	Number         int64  `json:"number"`
	HTMLURL        string `json:"html_url"`
	User           *user  `json:"user"`
	Merged         bool   `json:"merged"`
	MergedAt       string `json:"merged_at"`
	MergedBy       *user  `json:"merged_by"`
	MergeCommitSHA string `json:"merge_commit_sha"`
	Head           struct {
		SHA string `json:"sha"`
	} `json:"head"`
	Base struct {
		Ref string `json:"ref"`
	} `json:"base"`
}

// pullReview is Gitea's PullReview and GitHub's review.
type pullReview struct {
	ID        int64  `json:"id"`
	User      *user  `json:"user"`
	State     string `json:"state"`
	CommitID  string `json:"commit_id"`
	Stale     bool   `json:"stale"`
	Dismissed bool   `json:"dismissed"`
}

// pullCommit is one commit of a pull request (Gitea, GitHub).
type pullCommit struct {
	SHA    string `json:"sha"`
	Author *user  `json:"author"`
	Commit struct {
		Author struct {
			Name  string `json:"name"`
			Email string `json:"email"`
		} `json:"author"`
	} `json:"commit"`
}

// reviewState maps Gitea's (APPROVED, REQUEST_CHANGES, …) and GitHub's
// (APPROVED, CHANGES_REQUESTED, DISMISSED, …) verdicts.
func (rv pullReview) state() ReviewState {
	switch {
	case rv.Dismissed || rv.State == "DISMISSED":
		return ReviewDismissed
	case rv.State == "APPROVED":
		return ReviewApproved
	case rv.State == "REQUEST_CHANGES" || rv.State == "CHANGES_REQUESTED":
		return ReviewChangesRequested
	}
	return ReviewOther
}

// fill completes cr from a pull request's reviews and commits (Gitea,
// GitHub: the same paths and shapes).
func (c *Client) fill(ctx context.Context, cr *ChangeRequest, pr pullRequest, sizeParam string) error {
	base := c.repoPath() + "/pulls/" + strconv.FormatInt(pr.Number, 10)
	reviews, err := pages[pullReview](ctx, c, base+"/reviews", sizeParam)
	if err != nil {
		return err
	}
	// Gitea: without verification and files (expensive, not read).
	commits, err := pages[pullCommit](ctx, c, base+"/commits", sizeParam, "verification", "false", "files", "false")
	if err != nil {
		return err
	}
	cr.add(reviews, commits)
	return nil
}

// add adds a pull request's reviews and its commits' authors (Gitea,
// GitHub) to cr.
func (cr *ChangeRequest) add(reviews []pullReview, commits []pullCommit) {
	for _, rv := range reviews {
		cr.Reviews = append(cr.Reviews, Review{By: rv.User.person(), State: rv.state(), Commit: rv.CommitID, Stale: rv.Stale})
	}
	for _, pc := range commits {
		p := pc.Author.person()
		p.Name, p.Email = cmpOr(p.Name, pc.Commit.Author.Name), cmpOr(p.Email, pc.Commit.Author.Email)
		cr.CommitAuthors = append(cr.CommitAuthors, p)
	}
}

func requestOf(pr pullRequest) *ChangeRequest {
	return &ChangeRequest{Number: pr.Number, URL: pr.HTMLURL, Author: pr.User.login(), Merger: pr.MergedBy.login(),
		Head: pr.Head.SHA, LinksAuthors: true}
}

// giteaRequest: GET /repos/{o}/{r}/commits/{sha}/pull is the merged pull
// request whose merge commit sha is (404: none); its reviews and commits.
func (c *Client) giteaRequest(ctx context.Context, sha, branch string) (*ChangeRequest, error) {
	var pr pullRequest
	err := c.get(ctx, c.repoPath()+"/commits/"+sha+"/pull", nil, &pr)
	if isNotFound(err) {
		// No merged request, or no access to the repository: tell them apart.
		var repo struct {
			ID int64 `json:"id"`
		}
		if rerr := c.get(ctx, c.repoPath(), nil, &repo); rerr != nil {
			return nil, fmt.Errorf("the token cannot read %s: %w", c.project, rerr)
		}
		return nil, NoChangeRequest(sha, branch)
	}
	if err != nil {
		return nil, err
	}
	if !pr.Merged || pr.MergeCommitSHA != sha || (branch != "" && pr.Base.Ref != branch) {
		return nil, NoChangeRequest(sha, branch)
	}
	cr := requestOf(pr)
	return cr, c.fill(ctx, cr, pr, "limit")
}

// githubRequest: GET /repos/{o}/{r}/commits/{sha}/pulls lists the pull
// requests associated with sha; the merged one into branch whose merge
// commit is sha, read again for merged_by, then its reviews and commits.
func (c *Client) githubRequest(ctx context.Context, sha, branch string) (*ChangeRequest, error) {
	prs, err := pages[pullRequest](ctx, c, c.repoPath()+"/commits/"+sha+"/pulls", "per_page")
	if err != nil {
		return nil, err
	}
	for _, pr := range prs {
		if pr.MergedAt == "" || pr.MergeCommitSHA != sha || (branch != "" && pr.Base.Ref != branch) {
			continue
		}
		var full pullRequest
		if err := c.get(ctx, c.repoPath()+"/pulls/"+strconv.FormatInt(pr.Number, 10), nil, &full); err != nil {
			return nil, err
		}
		cr := requestOf(full)
		return cr, c.fill(ctx, cr, full, "per_page")
	}
	return nil, NoChangeRequest(sha, branch)
}

// gitlabUser is a GitLab user as its API names one.
type gitlabUser struct {
	Username string `json:"username"`
	Name     string `json:"name"`
}

// gitlabMR is the part of a GitLab merge request read here.
type gitlabMR struct {
	IID             int64       `json:"iid"`
	WebURL          string      `json:"web_url"`
	State           string      `json:"state"`
	TargetBranch    string      `json:"target_branch"`
	SHA             string      `json:"sha"`
	MergeCommitSHA  string      `json:"merge_commit_sha"`
	SquashCommitSHA string      `json:"squash_commit_sha"`
	Author          *gitlabUser `json:"author"`
	MergeUser       *gitlabUser `json:"merge_user"`
	MergedBy        *gitlabUser `json:"merged_by"`
}

// produced reports whether merging mr made sha: its merge commit, its
// squash commit, or (a fast-forward merge) its head.
func (mr gitlabMR) produced(sha string) bool {
	return mr.MergeCommitSHA == sha || mr.SquashCommitSHA == sha || (mr.MergeCommitSHA == "" && mr.SHA == sha)
}

// gitlabRequest: GET /projects/:id/repository/commits/:sha/merge_requests,
// the merged one into branch that produced sha; its approvals
// (approved_by[].approved_at), versions (when its final head was pushed)
// and commits (authors by name and e-mail: GitLab links no user).
func (c *Client) gitlabRequest(ctx context.Context, sha, branch string) (*ChangeRequest, error) {
	project := "/projects/" + url.PathEscape(c.project)
	mrs, err := pages[gitlabMR](ctx, c, project+"/repository/commits/"+sha+"/merge_requests", "per_page")
	if err != nil {
		return nil, err
	}
	for _, mr := range mrs {
		if mr.State != "merged" || !mr.produced(sha) || (branch != "" && mr.TargetBranch != branch) {
			continue
		}
		cr := &ChangeRequest{Number: mr.IID, URL: mr.WebURL, Head: mr.SHA}
		if mr.Author != nil {
			cr.Author = mr.Author.Username
		}
		switch {
		case mr.MergeUser != nil:
			cr.Merger = mr.MergeUser.Username
		case mr.MergedBy != nil:
			cr.Merger = mr.MergedBy.Username
		}
		base := project + "/merge_requests/" + strconv.FormatInt(mr.IID, 10)
		var approvals struct {
			ApprovedBy []struct {
				User       gitlabUser `json:"user"`
				ApprovedAt time.Time  `json:"approved_at"`
			} `json:"approved_by"`
		}
		if err := c.get(ctx, base+"/approvals", nil, &approvals); err != nil {
			return nil, err
		}
		versions, err := pages[struct {
			HeadCommitSHA string    `json:"head_commit_sha"`
			CreatedAt     time.Time `json:"created_at"`
		}](ctx, c, base+"/versions", "per_page")
		if err != nil {
			return nil, err
		}
		var pushed time.Time
		for _, v := range versions {
			if v.HeadCommitSHA == mr.SHA && (pushed.IsZero() || v.CreatedAt.Before(pushed)) {
				pushed = v.CreatedAt
			}
		}
		for _, a := range approvals.ApprovedBy {
			cr.Reviews = append(cr.Reviews, Review{By: Person{Login: a.User.Username, Name: a.User.Name}, State: ReviewApproved,
				OnHead: reviewAfter(a.ApprovedAt, pushed)})
		}
		commits, err := pages[struct {
			AuthorName  string `json:"author_name"`
			AuthorEmail string `json:"author_email"`
		}](ctx, c, base+"/commits", "per_page")
		if err != nil {
			return nil, err
		}
		for _, pc := range commits {
			cr.CommitAuthors = append(cr.CommitAuthors, Person{Name: pc.AuthorName, Email: pc.AuthorEmail})
		}
		return cr, nil
	}
	return nil, NoChangeRequest(sha, branch)
}

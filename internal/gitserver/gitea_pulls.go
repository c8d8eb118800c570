package gitserver

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"
)

// GiteaPerson is a Gitea user made by CreateUser: a developer who opens,
// reviews or authors changes.
type GiteaPerson struct {
	Login, Email string
}

// Signature is the person as a commit's author.
func (p GiteaPerson) Signature() *object.Signature {
	return &object.Signature{Name: p.Login, Email: p.Email}
}

// CreateUser creates a Gitea user and makes them a collaborator (write) on
// repo, so they may open, review and approve its pull requests.
func (g *Gitea) CreateUser(ctx context.Context, repo, login string) (GiteaPerson, error) {
	p := GiteaPerson{Login: login, Email: login + "@example.com"}
	if err := g.api(ctx, http.MethodPost, "/admin/users", map[string]any{
		"username": login, "email": p.Email, "password": giteaPassword, "must_change_password": false,
	}, nil); err != nil {
		return p, err
	}
	return p, g.api(ctx, http.MethodPut, "/repos/"+GiteaUser+"/"+repo+"/collaborators/"+login, map[string]any{"permission": "write"}, nil)
}

// ReadToken is a new token of GiteaUser that may only read repositories
// (and the user's own profile): what a cluster is given to check approvals.
func (g *Gitea) ReadToken(ctx context.Context, name string) (string, error) {
	var out struct {
		SHA1 string `json:"sha1"`
	}
	b, err := json.Marshal(map[string]any{"name": name, "scopes": []string{"read:repository", "read:user"}})
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.url+"/api/v1/users/"+GiteaUser+"/tokens", bytes.NewReader(b))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(GiteaUser, giteaPassword) // Gitea makes tokens only for a password login
	resp, err := g.http.Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("gitea: creating a token: HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(body))
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return "", err
	}
	return out.SHA1, nil
}

// OpenPull opens a pull request of head into base on repo as login, once
// Gitea knows the pushed branch (it records pushes asynchronously).
func (g *Gitea) OpenPull(ctx context.Context, repo, login, head, base, title string) (int64, error) {
	if err := g.eventually(ctx, "branch "+head+" known", func() (bool, error) {
		err := g.api(ctx, http.MethodGet, "/repos/"+GiteaUser+"/"+repo+"/branches/"+head, nil, nil)
		return err == nil, nil
	}); err != nil {
		return 0, err
	}
	var out struct {
		Number int64 `json:"number"`
	}
	err := g.apiAs(ctx, login, http.MethodPost, "/repos/"+GiteaUser+"/"+repo+"/pulls",
		map[string]any{"head": head, "base": base, "title": title}, &out)
	return out.Number, err
}

// WaitPullHead waits until pull request n's head is sha (Gitea moves it
// asynchronously after a push to its branch).
func (g *Gitea) WaitPullHead(ctx context.Context, repo string, n int64, sha string) error {
	return g.eventually(ctx, fmt.Sprintf("pull request %d at %s", n, sha), func() (bool, error) {
		var pr struct {
			Head struct {
				SHA string `json:"sha"`
			} `json:"head"`
		}
		err := g.api(ctx, http.MethodGet, "/repos/"+GiteaUser+"/"+repo+"/pulls/"+strconv.FormatInt(n, 10), nil, &pr)
		return err == nil && pr.Head.SHA == sha, err
	})
}

// eventually polls cond for up to 30 s.
func (g *Gitea) eventually(ctx context.Context, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gitea: waiting for %s: %w", what, cmp.Or(err, context.DeadlineExceeded))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Approve submits an approving review of pull request n by login, on the
// request's current head.
func (g *Gitea) Approve(ctx context.Context, repo, login string, n int64) error {
	return g.apiAs(ctx, login, http.MethodPost, "/repos/"+GiteaUser+"/"+repo+"/pulls/"+strconv.FormatInt(n, 10)+"/reviews",
		map[string]any{"event": "APPROVED", "body": "looks good"}, nil)
}

// Merge merges pull request n (a merge commit) as login and returns the
// branch's new head.
func (g *Gitea) Merge(ctx context.Context, repo, login string, n int64) (string, error) {
	path := "/repos/" + GiteaUser + "/" + repo + "/pulls/" + strconv.FormatInt(n, 10)
	// Gitea checks mergeability asynchronously: "try again later" (405) meanwhile.
	var last error
	if err := g.eventually(ctx, fmt.Sprintf("pull request %d merged", n), func() (bool, error) {
		last = g.apiAs(ctx, login, http.MethodPost, path+"/merge", map[string]any{"Do": "merge"}, nil)
		return last == nil, last
	}); err != nil {
		return "", err
	}
	var pr struct {
		MergeCommitSHA string `json:"merge_commit_sha"`
	}
	err := g.api(ctx, http.MethodGet, path, nil, &pr)
	return pr.MergeCommitSHA, err
}

// apiAs calls the API as login (the admin's Sudo header).
func (g *Gitea) apiAs(ctx context.Context, login, method, path string, in, out any) error {
	if login == "" || login == GiteaUser {
		return g.api(ctx, method, path, in, out)
	}
	return g.apiWith(ctx, map[string]string{"Sudo": login}, method, path, in, out)
}

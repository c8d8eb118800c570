package gitserver

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/go-git/go-billy/v5/memfs"
	"github.com/go-git/go-billy/v5/util"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"
)

// Commit describes one commit made with Server.Commit.
type Commit struct {
	// Branch to commit to; created when missing. Default "main".
	Branch string
	// Files to write (path relative to the repo root → content).
	Files map[string]string
	// Delete lists paths to remove.
	Delete []string
	// Message is the commit message. Default "update".
	Message string
	// Author and Committer default to "keyless test <test@keyless.dev>".
	Author, Committer *object.Signature
	// SignKey signs the commit with OpenPGP; Signer (e.g. an SSH signer) wins over it.
	SignKey *openpgp.Entity
	Signer  git.Signer
}

// Auth returns the go-git credentials the server accepts (nil without auth).
func (s *Server) Auth() transport.AuthMethod {
	switch {
	case s.opts.Token != "":
		return &githttp.BasicAuth{Username: "oauth2", Password: s.opts.Token}
	case s.opts.Password != "":
		return &githttp.BasicAuth{Username: s.opts.Username, Password: s.opts.Password}
	}
	return nil
}

// Commit clones repo over HTTP (in memory), applies c and pushes it, like a
// developer or CI job would. It returns the new commit's SHA.
func (s *Server) Commit(ctx context.Context, repo string, c Commit) (string, error) {
	return pushCommit(ctx, s.RepoURL(repo), s.Auth(), c)
}

// pushCommit clones url with auth (in memory), applies c and pushes it.
func pushCommit(ctx context.Context, url string, auth transport.AuthMethod, c Commit) (string, error) {
	if c.Branch == "" {
		c.Branch = "main"
	}
	if c.Message == "" {
		c.Message = "update"
	}
	now := time.Now()
	def := &object.Signature{Name: "keyless test", Email: "test@keyless.dev", When: now}
	if c.Author == nil {
		c.Author = def
	}
	if c.Committer == nil {
		c.Committer = c.Author
	}
	branch := plumbing.NewBranchReferenceName(c.Branch)
	fs := memfs.New()
	st := memory.NewStorage()
	r, err := git.CloneContext(ctx, st, fs, &git.CloneOptions{URL: url, Auth: auth})
	switch {
	case errors.Is(err, transport.ErrEmptyRemoteRepository):
		// The failed clone left a half-initialised storage behind; start afresh.
		fs, st = memfs.New(), memory.NewStorage()
		if r, err = git.Init(st, fs); err != nil {
			return "", fmt.Errorf("init %s: %w", url, err)
		}
		if _, err = r.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{url}}); err != nil {
			return "", fmt.Errorf("adding remote: %w", err)
		}
		if err := st.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, branch)); err != nil {
			return "", fmt.Errorf("setting HEAD: %w", err)
		}
	case err != nil:
		return "", fmt.Errorf("cloning %s: %w", url, err)
	default:
		if err := checkoutBranch(r, c.Branch); err != nil {
			return "", err
		}
	}
	wt, err := r.Worktree()
	if err != nil {
		return "", err
	}
	names := make([]string, 0, len(c.Files))
	for name := range c.Files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if dir := path.Dir(name); dir != "." {
			if err := fs.MkdirAll(dir, 0o755); err != nil {
				return "", err
			}
		}
		if err := util.WriteFile(fs, name, []byte(c.Files[name]), 0o644); err != nil {
			return "", fmt.Errorf("writing %s: %w", name, err)
		}
		if _, err := wt.Add(name); err != nil {
			return "", fmt.Errorf("adding %s: %w", name, err)
		}
	}
	for _, name := range c.Delete {
		if _, err := wt.Remove(name); err != nil {
			return "", fmt.Errorf("removing %s: %w", name, err)
		}
	}
	h, err := wt.Commit(c.Message, &git.CommitOptions{Author: c.Author, Committer: c.Committer, AllowEmptyCommits: true, SignKey: c.SignKey, Signer: c.Signer})
	if err != nil {
		return "", fmt.Errorf("committing: %w", err)
	}
	spec := config.RefSpec(branch.String() + ":" + branch.String())
	if err := r.PushContext(ctx, &git.PushOptions{RemoteName: "origin", RefSpecs: []config.RefSpec{spec}, Auth: auth}); err != nil {
		return "", fmt.Errorf("pushing %s: %w", c.Branch, err)
	}
	return h.String(), nil
}

// checkoutBranch switches a fresh clone to branch: the remote branch when it
// exists, else a new branch from the default branch.
func checkoutBranch(r *git.Repository, name string) error {
	branch := plumbing.NewBranchReferenceName(name)
	head, err := r.Head()
	if err != nil {
		return fmt.Errorf("reading HEAD: %w", err)
	}
	if head.Name() == branch {
		return nil
	}
	wt, err := r.Worktree()
	if err != nil {
		return err
	}
	opts := &git.CheckoutOptions{Branch: branch, Create: true}
	if remote, err := r.Reference(plumbing.NewRemoteReferenceName("origin", name), true); err == nil {
		opts.Hash = remote.Hash()
	}
	if err := wt.Checkout(opts); err != nil {
		return fmt.Errorf("checking out %s: %w", name, err)
	}
	return nil
}

// Package rollback rolls an Application back through Git: a new commit on
// its branch restores the Application's paths to their content at an
// earlier revision, so Git stays the source of truth and the audit trail
// holds. The commit is made from trees alone — no file of any revision is
// written to disk — and pushed with bump's race-free retry.
package rollback

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/bump"
	"github.com/keyless-cd/keyless/internal/confine"
	"github.com/keyless-cd/keyless/internal/gitsource"
)

// ErrNotInHistory is returned (wrapped) when the revision to roll back to
// is not an ancestor of the branch's tip.
var ErrNotInHistory = errors.New("not in the branch's history")

// Options configure Prepare.
type Options struct {
	// RepoURL is the repository (the Application's spec.source.repoURL). Required.
	RepoURL string
	// Branch is committed to. Default: the remote's default branch.
	Branch string
	// Paths are restored (folders or files, relative to the repository
	// root; "." is the whole tree). Required.
	Paths []string
	// To is the revision restored: a commit SHA (full or abbreviated), a
	// tag, HEAD~N of the branch. Required.
	To string
	// Application is namespace/name, for the commit message.
	Application string
	// Auth is the Git credential.
	Auth transport.AuthMethod
	// Author is the person rolling back; Committer defaults to Author.
	Author    bump.Identity
	Committer *bump.Identity
	// Trailers are appended to the message ("Key: value").
	Trailers []string
	// Signer signs the commit (what the controller's verify mode needs).
	Signer git.Signer
	// Retries of a push rejected because the branch moved, when set; they
	// stop at bump.DefaultTimeout in any case. Default 0: until then.
	Retries int
	// TempDir holds the clone. Default os.TempDir().
	TempDir string
	// Limits bound the clone like the controller's fetch.
	Limits Limits
	// Edit, when set, makes a commit of its own instead of restoring To
	// (which is then unused): it gets the files under Paths at the tip
	// (repository-relative path → content; at most MaxEditFiles, of
	// MaxEditBytes in all) and returns those to replace, with their new
	// content. It runs again on a new tip when the push is rejected.
	Edit func(files map[string][]byte) (map[string][]byte, error)
	// Message is Edit's commit message (trailers are appended), asked for
	// after each Edit.
	Message func() string
	// PushTo, when set, pushes the commit as this new branch (for a pull or
	// merge request) instead of to Branch; an existing branch is not moved.
	PushTo string
}

// Bounds of what an Edit reads.
const (
	MaxEditFiles = 5000
	MaxEditBytes = 64 << 20
)

// Limits bound a clone: what the server sends and how long it takes.
type Limits struct {
	// Timeout bounds the whole clone. Default 60s (the controller's --git-timeout).
	Timeout time.Duration
	// MaxBytes bounds the bytes read over HTTP(S). Default 512 MiB (the
	// controller's fetch cap).
	MaxBytes int64
}

// withDefaults fills in the documented defaults.
func (l Limits) withDefaults() Limits {
	if l.Timeout <= 0 {
		l.Timeout = 60 * time.Second
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = 512 << 20
	}
	return l
}

// Plan is a rollback commit made in a clone, not yet pushed.
type Plan struct {
	// Dir is the clone (bare): a preview renders from it.
	Dir string
	// Branch, and Tip its commit the rollback goes on.
	Branch string
	Tip    string
	// To is the commit restored and ToSubject its subject line.
	To        string
	ToSubject string
	// Commit is the rollback commit ("" when the paths already hold To's
	// content: nothing to do).
	Commit string
	// Attempts is how many pushes Push needed.
	Attempts int

	opts Options
	repo *git.Repository
}

// Prepare clones the branch (its whole history, one branch) and makes the
// rollback commit on its tip. Call Close when done.
func Prepare(ctx context.Context, opts Options) (*Plan, error) {
	if opts.RepoURL == "" || (opts.To == "" && opts.Edit == nil) || len(opts.Paths) == 0 {
		return nil, errors.New("rollback: a repository, a revision (or an edit) and paths are required")
	}
	for i, p := range opts.Paths {
		clean, err := confine.Lexical(lexicalRoot, lexicalRoot, p)
		if err != nil {
			return nil, fmt.Errorf("path %s: %w", p, err)
		}
		opts.Paths[i] = strings.TrimPrefix(clean, "./")
	}
	opts.Auth = gitsource.ForURL(opts.Auth, opts.RepoURL)
	dir, repo, err := cloneBranch(ctx, opts.RepoURL, opts.Branch, opts.Auth, opts.TempDir, opts.Limits)
	if err != nil {
		return nil, err
	}
	p := &Plan{Dir: dir, opts: opts, repo: repo}
	head, err := p.repo.Head()
	if err != nil {
		p.Close()
		return nil, err
	}
	p.Branch = head.Name().Short()
	if opts.Edit == nil {
		to, err := p.repo.ResolveRevision(plumbing.Revision(opts.To))
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("--to %s: no such commit on branch %s: %w", opts.To, p.Branch, ErrNotInHistory)
		}
		p.To = to.String()
	}
	if _, _, err := p.attempt(head.Hash()); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// Clone clones branch's history (bare, that branch only; the remote's
// default branch when empty) into a new folder under tempDir ("" for
// os.TempDir()), where previews of its revisions render from, bounded by
// limits. The caller removes the folder.
func Clone(ctx context.Context, repoURL, branch string, auth transport.AuthMethod, tempDir string, limits Limits) (string, error) {
	dir, _, err := cloneBranch(ctx, repoURL, branch, gitsource.ForURL(auth, repoURL), tempDir, limits)
	return dir, err
}

type cloned struct {
	dir  string
	repo *git.Repository
	err  error
}

// cloneBranch clones within limits. The clone runs on its own goroutine so
// that an SSH server that never finishes its handshake (go-git honours the
// context only once connected) is abandoned at the deadline; its folder is
// removed when it ends.
func cloneBranch(ctx context.Context, repoURL, branch string, auth transport.AuthMethod, tempDir string, limits Limits) (string, *git.Repository, error) {
	limits = limits.withDefaults()
	ctx, cancel := gitsource.Bounded(ctx, limits.MaxBytes, limits.Timeout)
	defer cancel()
	dir, err := os.MkdirTemp(tempDir, "keyless-rollback-")
	if err != nil {
		return "", nil, err
	}
	done := make(chan cloned, 1)
	go func() {
		clone := &git.CloneOptions{URL: repoURL, Auth: auth, SingleBranch: true, Tags: git.NoTags}
		if branch != "" {
			clone.ReferenceName = plumbing.NewBranchReferenceName(branch)
		}
		repo, err := git.PlainCloneContext(ctx, dir, true, clone)
		if err != nil {
			_ = os.RemoveAll(dir)
		}
		done <- cloned{dir: dir, repo: repo, err: err}
	}()
	select {
	case c := <-done:
		if c.err != nil {
			return "", nil, fmt.Errorf("cloning %s: %w", gitsource.Redact(repoURL), c.err)
		}
		return c.dir, c.repo, nil
	case <-ctx.Done():
		go func() { // the abandoned clone's folder goes when it ends
			if c := <-done; c.err == nil {
				_ = os.RemoveAll(c.dir)
			}
		}()
		return "", nil, fmt.Errorf("cloning %s (limit %s): %w", gitsource.Redact(repoURL), limits.Timeout, ctx.Err())
	}
}

// Push pushes the rollback commit; when the branch moved meanwhile, the
// rollback is made again on the new tip and pushed (bump.PushRetrying:
// until bump.DefaultTimeout, at most Options.Retries times when set).
func (p *Plan) Push(ctx context.Context) error {
	if p.Commit == "" {
		return nil
	}
	if p.opts.PushTo != "" {
		p.Attempts = 1
		spec := config.RefSpec(plumbing.NewBranchReferenceName(p.Branch) + ":" + plumbing.NewBranchReferenceName(p.opts.PushTo))
		if err := p.repo.PushContext(ctx, &git.PushOptions{RemoteName: "origin", Auth: p.opts.Auth, RefSpecs: []config.RefSpec{spec}}); err != nil {
			return fmt.Errorf("pushing the new branch %s: %w", p.opts.PushTo, err)
		}
		return nil
	}
	first := true
	var tip plumbing.Hash
	pushed, err := bump.PushRetrying(ctx, p.repo, bump.PushOptions{
		Branch: p.Branch, Auth: p.opts.Auth, Retries: p.opts.Retries,
		Reset: func(t plumbing.Hash) error { tip = t; return nil },
	}, func(int) (plumbing.Hash, bool, error) {
		if first {
			first = false
			return plumbing.NewHash(p.Commit), true, nil
		}
		return p.attempt(tip)
	})
	p.Attempts = pushed.Attempts
	if err == nil && pushed.Commit == "" {
		p.Commit = "" // the branch reached To's content meanwhile
	}
	return err
}

// Close deletes the clone.
func (p *Plan) Close() { _ = os.RemoveAll(p.Dir) }

// attempt makes the rollback commit on tip and points the local branch at
// it; false when tip's paths already hold To's content.
func (p *Plan) attempt(tip plumbing.Hash) (plumbing.Hash, bool, error) {
	p.Tip, p.Commit = tip.String(), ""
	tipCommit, err := p.repo.CommitObject(tip)
	if err != nil {
		return plumbing.ZeroHash, false, err
	}
	if p.opts.Edit != nil {
		return p.attemptEdit(tip, tipCommit)
	}
	toCommit, err := p.repo.CommitObject(plumbing.NewHash(p.To))
	if err != nil {
		return plumbing.ZeroHash, false, err
	}
	if ok, err := toCommit.IsAncestor(tipCommit); err != nil || !ok {
		return plumbing.ZeroHash, false, fmt.Errorf("--to %s (%s) is not an ancestor of %s's tip %s: %w", p.opts.To, short(p.To), p.Branch, short(p.Tip), ErrNotInHistory)
	}
	p.ToSubject, _, _ = strings.Cut(strings.TrimSpace(toCommit.Message), "\n")
	tree, err := tipCommit.Tree()
	if err != nil {
		return plumbing.ZeroHash, false, err
	}
	from, err := toCommit.Tree()
	if err != nil {
		return plumbing.ZeroHash, false, err
	}
	st := p.repo.Storer
	root := tree.Hash
	for _, pth := range p.opts.Paths {
		cur, err := object.GetTree(st, root)
		if err != nil {
			return plumbing.ZeroHash, false, err
		}
		if root, err = restore(st, cur, from, pth); err != nil {
			return plumbing.ZeroHash, false, fmt.Errorf("restoring %s: %w", pth, err)
		}
	}
	if root == tree.Hash {
		return plumbing.ZeroHash, false, nil
	}
	return p.commitOn(tip, root)
}

// commitOn commits root on tip and moves the local branch to it.
func (p *Plan) commitOn(tip, root plumbing.Hash) (plumbing.Hash, bool, error) {
	hash, err := p.commit(tip, root)
	if err != nil {
		return plumbing.ZeroHash, false, err
	}
	ref := plumbing.NewHashReference(plumbing.NewBranchReferenceName(p.Branch), hash)
	if err := p.repo.Storer.SetReference(ref); err != nil {
		return plumbing.ZeroHash, false, err
	}
	p.Commit = hash.String()
	return hash, true, nil
}

// commit writes the rollback commit of tree on parent (signed with
// Options.Signer when set).
func (p *Plan) commit(parent, tree plumbing.Hash) (plumbing.Hash, error) {
	now := time.Now()
	author := &object.Signature{Name: p.opts.Author.Name, Email: p.opts.Author.Email, When: now}
	committer := author
	if c := p.opts.Committer; c != nil {
		committer = &object.Signature{Name: c.Name, Email: c.Email, When: now}
	}
	c := &object.Commit{Author: *author, Committer: *committer, Message: p.message(), TreeHash: tree, ParentHashes: []plumbing.Hash{parent}}
	if p.opts.Signer != nil {
		unsigned := p.repo.Storer.NewEncodedObject()
		if err := c.EncodeWithoutSignature(unsigned); err != nil {
			return plumbing.ZeroHash, err
		}
		r, err := unsigned.Reader()
		if err != nil {
			return plumbing.ZeroHash, err
		}
		sig, err := p.opts.Signer.Sign(r)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("signing the rollback commit: %w", err)
		}
		c.PGPSignature = string(sig)
	}
	obj := p.repo.Storer.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return p.repo.Storer.SetEncodedObject(obj)
}

func (p *Plan) message() string {
	var b strings.Builder
	if p.opts.Edit != nil {
		b.WriteString(strings.TrimSpace(p.opts.Message()) + "\n")
		if len(p.opts.Trailers) > 0 {
			b.WriteString("\n")
		}
		for _, t := range p.opts.Trailers {
			b.WriteString(t + "\n")
		}
		return b.String()
	}
	what := p.opts.Application
	if what == "" {
		what = strings.Join(p.opts.Paths, ", ")
	}
	fmt.Fprintf(&b, "Roll back %s to %s\n\n", what, short(p.To))
	fmt.Fprintf(&b, "Restores %s to its content at %s (%q).\n\n", strings.Join(p.opts.Paths, ", "), p.To, p.ToSubject)
	fmt.Fprintf(&b, "Rollback-To: %s\nRollback-From: %s\n", p.To, p.Tip)
	for _, t := range p.opts.Trailers {
		b.WriteString(t + "\n")
	}
	return b.String()
}

// PathsOf are the paths a rollback of app restores: spec.source.path and
// the Helm value files it names (which may lie outside it).
func PathsOf(app *kv1.Application) ([]string, error) {
	base := strings.Trim(path.Clean("/"+app.Spec.Source.Path), "/")
	if base == "" {
		base = "."
	}
	paths := []string{base}
	if h := app.Spec.Source.Helm; h != nil {
		for _, vf := range h.ValueFiles {
			p, err := confine.Lexical(lexicalRoot, path.Join(lexicalRoot, base), vf)
			if err != nil {
				return nil, fmt.Errorf("spec.source.helm.valueFiles %s: %w", vf, err)
			}
			p = strings.TrimPrefix(p, "./")
			if base != "." && !strings.HasPrefix(p, base+"/") {
				paths = append(paths, p)
			}
		}
	}
	return paths, nil
}

// lexicalRoot stands for the repository root in path checks (no file is
// read): a path may not climb above it.
const lexicalRoot = "/repository"

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

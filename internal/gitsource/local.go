package gitsource

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
)

// ErrRevisionNotFound is returned (wrapped) when a revision given to a local
// repository names no commit there, e.g. a shallow clone that lacks the base
// of a merge request.
var ErrRevisionNotFound = errors.New("revision not found")

// Local is a Git repository on this machine (a developer's or CI job's
// checkout), opened read-only: its commits are written out with the same
// confinement and limits as the controller's checkouts.
type Local struct {
	repo     *git.Repository
	root     string
	maxFiles int
	maxBytes int64
}

// OpenLocal opens the repository holding dir (dir or an ancestor holds
// .git; linked worktrees are followed), or the bare repository dir. maxFiles and maxBytes bound one
// checkout as Options.MaxCheckoutFiles and MaxCheckoutBytes do (0: the
// controller's defaults).
func OpenLocal(dir string, maxFiles int, maxBytes int64) (*Local, error) {
	r, err := git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	if errors.Is(err, git.ErrRepositoryNotExists) {
		r, err = git.PlainOpen(dir) // a bare repository
	}
	if err != nil {
		return nil, fmt.Errorf("opening the Git repository at %s: %w", dir, err)
	}
	if maxFiles == 0 {
		maxFiles = 20000
	}
	if maxBytes == 0 {
		maxBytes = 256 << 20
	}
	root := dir
	if wt, err := r.Worktree(); err == nil {
		root = wt.Filesystem.Root()
	}
	if root, err = filepath.Abs(root); err != nil {
		return nil, err
	}
	return &Local{repo: r, root: root, maxFiles: maxFiles, maxBytes: maxBytes}, nil
}

// Root is the folder of the repository's work tree.
func (l *Local) Root() string { return l.root }

// RemoveTree deletes a folder WriteTree wrote (its folders are read-only).
// Symlinks are never followed.
func RemoveTree(dir string) error { return removeTree(dir) }

// Resolve returns the commit SHA rev names (a branch, tag, remote branch,
// HEAD~1, a full or abbreviated SHA).
func (l *Local) Resolve(rev string) (string, error) {
	h, err := l.repo.ResolveRevision(plumbing.Revision(rev))
	if err != nil {
		return "", fmt.Errorf("%q is not a commit of this repository (a shallow clone may lack it: fetch it with `git fetch origin %s`, or clone with full depth — GIT_DEPTH: 0 on GitLab, fetch-depth: 0 on GitHub): %w", rev, rev, ErrRevisionNotFound)
	}
	return h.String(), nil
}

// Commit returns the metadata of sha.
func (l *Local) Commit(sha string) (*Commit, error) {
	c, err := l.repo.CommitObject(plumbing.NewHash(sha))
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", sha, err)
	}
	return commitOf(sha, c), nil
}

// RemoteURLs returns the URLs of the repository's remotes.
func (l *Local) RemoteURLs() []string {
	rems, err := l.repo.Remotes()
	if err != nil {
		return nil
	}
	var out []string
	for _, r := range rems {
		out = append(out, r.Config().URLs...)
	}
	return out
}

// WriteTree writes the files of commit sha into the empty folder dir,
// confined to it and bounded like a controller checkout (ErrUnsafeTree,
// ErrCheckoutTooLarge).
func (l *Local) WriteTree(ctx context.Context, sha, dir string) error {
	c, err := l.repo.CommitObject(plumbing.NewHash(sha))
	if err != nil {
		return fmt.Errorf("commit %s: %w", sha, err)
	}
	tree, err := c.Tree()
	if err != nil {
		return fmt.Errorf("commit %s: %w", sha, err)
	}
	if _, err := writeTree(ctx, l.repo.Storer, tree, dir, l.maxFiles, l.maxBytes, nil); err != nil {
		return fmt.Errorf("checking out %s: %w", sha, err)
	}
	return nil
}

package gitsource

import (
	"fmt"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Commit is the metadata of a commit, for status history and the audit trail.
type Commit struct {
	SHA       string
	Author    string // "Name <email>"
	Committer string
	Message   string // subject line
	Time      time.Time
	// object is kept for signature verification.
	object *object.Commit
}

// CommitInfo returns the metadata of sha (fetched before).
func (s *Source) CommitInfo(url, sha string) (*Commit, error) {
	r := s.repo(url)
	if c := r.knownCommit(sha); c != nil {
		return c, nil
	}
	repo, unlock, err := s.openLocked(url)
	if err != nil {
		return nil, err
	}
	defer unlock()
	c, err := repo.CommitObject(plumbing.NewHash(sha))
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", sha, err)
	}
	info := commitOf(sha, c)
	r.rememberCommit(info)
	return info, nil
}

// maxKnownCommits bounds the commits a repository entry remembers.
const maxKnownCommits = 64

// knownCommit is the metadata of sha when this entry read it before (the
// commit is in the cached repository), else nil. A push to a repository
// many Applications read has each of them look the commit up: once the
// first did, the others neither wait for the repository's lock (held
// while a checkout is written) nor read it again.
func (r *repo) knownCommit(sha string) *Commit {
	r.commitsMu.Lock()
	defer r.commitsMu.Unlock()
	return r.commits[sha]
}

// rememberCommit keeps c's metadata (at most maxKnownCommits, the oldest
// set dropped at once).
func (r *repo) rememberCommit(c *Commit) {
	r.commitsMu.Lock()
	defer r.commitsMu.Unlock()
	if r.commits == nil || len(r.commits) >= maxKnownCommits {
		r.commits = make(map[string]*Commit, maxKnownCommits)
	}
	r.commits[c.SHA] = c
}

// commitOf is the metadata of commit c.
func commitOf(sha string, c *object.Commit) *Commit {
	subject, _, _ := strings.Cut(strings.TrimSpace(c.Message), "\n")
	return &Commit{
		SHA:       sha,
		Author:    fmt.Sprintf("%s <%s>", c.Author.Name, c.Author.Email),
		Committer: fmt.Sprintf("%s <%s>", c.Committer.Name, c.Committer.Email),
		Message:   subject,
		Time:      c.Committer.When,
		object:    c,
	}
}

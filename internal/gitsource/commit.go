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
	repo, unlock, err := s.openLocked(url)
	if err != nil {
		return nil, err
	}
	defer unlock()
	c, err := repo.CommitObject(plumbing.NewHash(sha))
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", sha, err)
	}
	return commitOf(sha, c), nil
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

package gitsource

import (
	"fmt"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/keyless-cd/keyless/internal/readset"
)

// InputValues returns the value of each of a render's inputs in commit sha
// of url (fetched before), from the Git objects alone: no checkout.
func (s *Source) InputValues(url, sha string, inputs []readset.Input) ([]string, error) {
	repo, unlock, err := s.openLocked(url)
	if err != nil {
		return nil, err
	}
	defer unlock()
	c, err := repo.CommitObject(plumbing.NewHash(sha))
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", sha, err)
	}
	return readset.Values(repo.Storer, c, inputs)
}

package gitsource

import (
	"fmt"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/keyless-cd/keyless/internal/readset"
)

// InputValues returns the value of each of a render's inputs in commit sha
// of url (fetched before), from the Git objects alone: no checkout.
func (s *Source) InputValues(url, sha string, inputs []readset.Input) ([]string, error) {
	cv, unlock, err := s.commitValues(url, sha)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return cv.Values(inputs)
}

// InputValuesOf returns, for each of sets (keyed by the caller), the values
// of its inputs at commit sha of url, reading the commit and the folders
// the sets share once, under one hold of the repository. A set whose
// values cannot be given is left out.
func (s *Source) InputValuesOf(url, sha string, sets map[string][]readset.Input) (map[string][]string, error) {
	cv, unlock, err := s.commitValues(url, sha)
	if err != nil {
		return nil, err
	}
	defer unlock()
	out := make(map[string][]string, len(sets))
	for k, inputs := range sets {
		if v, err := cv.Values(inputs); err == nil {
			out[k] = v
		}
	}
	return out, nil
}

// commitValues holds url's repository (release with unlock) and prepares
// input values at its commit sha.
func (s *Source) commitValues(url, sha string) (*readset.CommitValues, func(), error) {
	repo, unlock, err := s.openLocked(url)
	if err != nil {
		return nil, nil, err
	}
	c, err := repo.CommitObject(plumbing.NewHash(sha))
	if err != nil {
		unlock()
		return nil, nil, fmt.Errorf("commit %s: %w", sha, err)
	}
	cv, err := readset.NewCommitValues(repo.Storer, c)
	if err != nil {
		unlock()
		return nil, nil, err
	}
	return cv, unlock, nil
}

package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// ScanHistory scans every blob added or changed by any commit reachable from
// any ref of the repository at root: a credential removed from the working
// tree is still in Git for anyone who clones it. Each blob is read once;
// blobs identical to the working-tree file at the same path are left to
// ScanRepo. Findings carry the short id of the newest commit that wrote the
// blob.
func ScanHistory(root string, opts ScanOptions) ([]Finding, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	repo, err := git.PlainOpenWithOptions(abs, &git.PlainOpenOptions{DetectDotGit: true})
	if err != nil {
		return nil, fmt.Errorf("--history needs a Git repository at %s: %w", root, err)
	}
	commits, err := repo.Log(&git.LogOptions{All: true})
	if err != nil {
		if errors.Is(err, plumbing.ErrReferenceNotFound) {
			return nil, nil // no commits yet
		}
		return nil, fmt.Errorf("reading history: %w", err)
	}
	includes := gitlabIncludes(abs)
	seen := map[plumbing.Hash]bool{}
	var findings []Finding
	err = commits.ForEach(func(c *object.Commit) error {
		changed, err := changedBlobs(c)
		if err != nil {
			return fmt.Errorf("commit %s: %w", c.Hash.String()[:7], err)
		}
		for _, e := range changed {
			if seen[e.hash] {
				continue
			}
			seen[e.hash] = true
			if sameAsWorktree(abs, e.name, e.hash) {
				continue
			}
			data, size, ok := readBlob(repo, e.hash)
			if !ok {
				if size > MaxFileBytes {
					opts.skipped(e.name, c.Hash.String()[:7], size)
				}
				continue
			}
			for _, f := range scanFile(e.name, data, isCIFile(e.name) || includes.matches(e.name)) {
				f.Commit = c.Hash.String()[:7]
				findings = append(findings, f)
			}
		}
		return nil
	})
	sortFindings(findings)
	return findings, err
}

type blobEntry struct {
	name string
	hash plumbing.Hash
}

// changedBlobs lists the files a commit added or modified against its first
// parent (all files for a root commit).
func changedBlobs(c *object.Commit) ([]blobEntry, error) {
	tree, err := c.Tree()
	if err != nil {
		return nil, err
	}
	var parentTree *object.Tree
	if c.NumParents() > 0 {
		p, err := c.Parent(0)
		if err != nil {
			return nil, err
		}
		if parentTree, err = p.Tree(); err != nil {
			return nil, err
		}
	}
	changes, err := object.DiffTree(parentTree, tree)
	if err != nil {
		return nil, err
	}
	var out []blobEntry
	for _, ch := range changes {
		if ch.To.Name == "" || !ch.To.TreeEntry.Mode.IsFile() {
			continue // a deletion, or a submodule
		}
		out = append(out, blobEntry{name: ch.To.Name, hash: ch.To.TreeEntry.Hash})
	}
	return out, nil
}

// sameAsWorktree reports whether the working-tree file at name has exactly
// the blob's content.
func sameAsWorktree(root, name string, h plumbing.Hash) bool {
	data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(name)))
	return err == nil && plumbing.ComputeHash(plumbing.BlobObject, data) == h
}

// readBlob returns a blob's content when it is text of at most
// MaxFileBytes; for a larger text blob, its size and false.
func readBlob(repo *git.Repository, h plumbing.Hash) ([]byte, int64, bool) {
	b, err := repo.BlobObject(h)
	if err != nil {
		return nil, 0, false
	}
	r, err := b.Reader()
	if err != nil {
		return nil, 0, false
	}
	defer func() { _ = r.Close() }()
	data, err := io.ReadAll(io.LimitReader(r, MaxFileBytes+1))
	if err != nil || bytes.IndexByte(data, 0) >= 0 {
		return nil, 0, false
	}
	if len(data) > MaxFileBytes {
		return nil, b.Size, false
	}
	return data, b.Size, true
}

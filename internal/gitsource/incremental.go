package gitsource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// Fetching only what a new commit changed.
//
// A depth-1 fetch is answered with the commit's whole tree whatever the
// cache holds: a one-file commit to a monorepo costs the whole tree again.
// When the cache holds the previous tip of the ref, the new tip is first
// asked for with that tip as a "have" and no depth: the server then sends
// only the objects the previous tip does not reach. The server takes the
// cache for holding the previous tip's whole history, which a shallow cache
// does not: an object the new commit shares only with an older commit (a
// file restored as it was) is left out. So the pack is written to a scratch
// folder first, every commit in it is checked complete — each tree and blob
// that differs from its first parent's is present, in the pack or the
// cache — and only then written into the cache. Otherwise it is dropped and
// the commit is fetched at depth 1 as before. Every commit in the cache thus
// has its whole tree, which fetch's "already here" relies on.

// incrementalMaxBytes bounds an incremental fetch (Options.MaxFetchBytes
// when smaller): past it (a force-push to unrelated history sends all of
// it) the attempt is dropped for a depth-1 fetch.
const incrementalMaxBytes = 16 << 20

// incrementalMaxEntries bounds the tree entries the completeness check
// visits for one pack (many commits of large, slightly different trees).
const incrementalMaxEntries = 1 << 20

// incomingPrefix names the scratch folders inside a cached repository.
const incomingPrefix = "keyless-incoming-"

// errIncomplete says a pack left out an object a commit in it needs.
var errIncomplete = errors.New("the server left out objects the cache does not hold")

// errCheckBudget says a pack's trees were too large to check.
var errCheckBudget = errors.New("too many tree entries to check")

// localRef is the cache's ref for rev's ref (fetchRevision's refspecs).
func localRef(rev Revision) plumbing.ReferenceName {
	if rev.Ref == "HEAD" {
		return "refs/keyless/HEAD"
	}
	return plumbing.ReferenceName("refs/keyless/" + strings.TrimPrefix(rev.Ref, "refs/"))
}

// fetchIncremental fetches rev's commit as the change from the previous tip
// of its ref in the cache. It reports whether the commit is now in the
// cache; false with a nil error means "fetch it the usual way" (no previous
// tip, the ref moved, the server does not know the tip, a pack too large or
// incomplete). Only a cancelled ctx or a server silent for Options.Timeout
// is an error. The caller holds r.mu.
func (s *Source) fetchIncremental(ctx context.Context, r *repo, repo *git.Repository, url string, rev Revision, auth transport.AuthMethod) (bool, error) {
	if rev.Ref == "" {
		return false, nil
	}
	prev, err := repo.Reference(localRef(rev), true)
	if err != nil || prev.Hash().String() == rev.SHA {
		return false, nil
	}
	if _, err := repo.CommitObject(prev.Hash()); err != nil {
		return false, nil
	}
	limit := min(s.opts.MaxFetchBytes, incrementalMaxBytes)
	ictx, cancel := context.WithTimeout(withReadCap(ctx, limit), s.opts.Timeout)
	defer cancel()
	err = s.fetchChange(ictx, r, repo, url, rev, prev.Hash(), auth)
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return false, err // a server that does not answer gets no second timeout
	}
	if err != nil {
		// Any failure falls back to a depth-1 fetch, which reports its own.
		return false, nil
	}
	s.changeFetches.Add(1)
	return true, nil
}

// fetchChange asks url for rev.SHA with have as the one common commit,
// checks the pack complete in a scratch folder and writes it into the cache.
func (s *Source) fetchChange(ctx context.Context, r *repo, repo *git.Repository, url string, rev Revision, have plumbing.Hash, auth transport.AuthMethod) error {
	ep, err := transport.NewEndpoint(url)
	if err != nil {
		return err
	}
	c, err := client.NewClient(ep)
	if err != nil {
		return err
	}
	sess, err := c.NewUploadPackSession(ep, auth)
	if err != nil {
		return err
	}
	defer func() { _ = sess.Close() }()
	adv, err := sess.AdvertisedReferencesContext(ctx)
	if err != nil {
		return err
	}
	refs, err := adv.AllReferences()
	if err != nil {
		return err
	}
	if tip, err := storer.ResolveReference(refs, plumbing.ReferenceName(rev.Ref)); err != nil || tip.Hash().String() != rev.SHA {
		return errors.New("the ref moved since it was resolved")
	}
	want := plumbing.NewHash(rev.SHA)
	req := packp.NewUploadPackRequestFromCapabilities(adv.Capabilities)
	if adv.Capabilities.Supports(capability.NoProgress) {
		if err := req.Capabilities.Set(capability.NoProgress); err != nil {
			return err
		}
	}
	req.Wants = []plumbing.Hash{want}
	req.Haves = []plumbing.Hash{have}
	res, err := sess.UploadPack(ctx, req)
	if err != nil {
		return err
	}
	defer func() { _ = res.Close() }()
	if !slices.Contains(res.ACKs, have) {
		// Not a commit the server knows: it would send the whole history.
		return errors.New("the server does not know the previous tip")
	}
	scratch, err := os.MkdirTemp(r.dir, incomingPrefix)
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(scratch) }()
	if err := os.MkdirAll(filepath.Join(scratch, "objects", "pack"), 0o700); err != nil {
		return err
	}
	in := filesystem.NewStorage(osfs.New(scratch), cache.NewObjectLRU(repoObjectCache))
	if err := packfile.UpdateObjectStorage(in, demux(req.Capabilities, res)); err != nil {
		return err
	}
	if err := in.HasEncodedObject(want); err != nil {
		return fmt.Errorf("the pack lacks %s: %w", rev.SHA, err)
	}
	if err := checkPackComplete(in, repo.Storer); err != nil {
		if errors.Is(err, errIncomplete) {
			s.refusedPacks.Add(1)
		}
		return err
	}
	if err := copyPacks(filepath.Join(scratch, "objects", "pack"), repo.Storer); err != nil {
		return err
	}
	return repo.Storer.SetReference(plumbing.NewHashReference(localRef(rev), want))
}

// demux strips the side-band framing of an upload-pack response when the
// request asked for it.
func demux(caps *capability.List, res *packp.UploadPackResponse) io.Reader {
	switch {
	case caps.Supports(capability.Sideband64k):
		return sideband.NewDemuxer(sideband.Sideband64k, res)
	case caps.Supports(capability.Sideband):
		return sideband.NewDemuxer(sideband.Sideband, res)
	}
	return res
}

// copyPacks writes the packs of folder from into the cache through its
// pack writer, which indexes each and adds it to the indexes the cache
// holds (moving the files in would make it read every index again).
func copyPacks(from string, to storer.Storer) error {
	pw, ok := to.(storer.PackfileWriter)
	if !ok {
		return errors.New("the cache cannot take packs")
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "pack-") || filepath.Ext(e.Name()) != ".pack" {
			continue
		}
		if err := copyPack(filepath.Join(from, e.Name()), pw); err != nil {
			return err
		}
	}
	return nil
}

func copyPack(file string, pw storer.PackfileWriter) (err error) {
	f, err := os.Open(file) //nolint:gosec // a pack this fetch wrote into its own scratch folder
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	w, err := pw.PackfileWriter()
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, f); err != nil {
		_ = w.Close()
		return err
	}
	return w.Close()
}

// packCheck checks that the commits of a pack (in) have their whole trees
// in the pack or the cache (main), every commit of which is complete.
type packCheck struct {
	in, main storer.EncodedObjectStorer
	// complete are the pack's commits found complete.
	complete map[plumbing.Hash]bool
	// budget is what is left of incrementalMaxEntries.
	budget int
}

// checkPackComplete returns errIncomplete when a commit of in lacks an
// object of its tree in both in and main.
func checkPackComplete(in, main storer.EncodedObjectStorer) error {
	c := &packCheck{in: in, main: main, complete: map[plumbing.Hash]bool{}, budget: incrementalMaxEntries}
	iter, err := in.IterEncodedObjects(plumbing.CommitObject)
	if err != nil {
		return err
	}
	defer iter.Close()
	return iter.ForEach(func(o plumbing.EncodedObject) error {
		return c.commit(o.Hash())
	})
}

// commit checks the pack's commit h and, first, the pack's commits on its
// first-parent line it builds on.
func (c *packCheck) commit(h plumbing.Hash) error {
	var line []*packCommit
	for !c.complete[h] {
		pc, err := c.read(h)
		if err != nil {
			return err
		}
		line = append(line, pc)
		if pc.parent == nil || !c.inPack(*pc.parent) {
			break
		}
		h = *pc.parent
	}
	for i := len(line) - 1; i >= 0; i-- {
		pc := line[i]
		var base plumbing.Hash // zero: compare with nothing
		if pc.parent != nil && (c.complete[*pc.parent] || c.inMain(*pc.parent)) {
			base = pc.parentTree
		}
		if err := c.tree(pc.tree, base); err != nil {
			return fmt.Errorf("commit %s: %w", pc.hash, err)
		}
		c.complete[pc.hash] = true
	}
	return nil
}

// packCommit is what the check reads of a commit.
type packCommit struct {
	hash, tree plumbing.Hash
	// parent is the first parent; parentTree its tree when it is readable.
	parent     *plumbing.Hash
	parentTree plumbing.Hash
}

func (c *packCheck) read(h plumbing.Hash) (*packCommit, error) {
	o, err := c.in.EncodedObject(plumbing.CommitObject, h)
	if err != nil {
		return nil, err
	}
	var cm object.Commit
	if err := cm.Decode(o); err != nil {
		return nil, err
	}
	pc := &packCommit{hash: h, tree: cm.TreeHash}
	if len(cm.ParentHashes) > 0 {
		p := cm.ParentHashes[0]
		pc.parent = &p
		if parent, err := c.object(plumbing.CommitObject, p); err == nil {
			var pcm object.Commit
			if pcm.Decode(parent) == nil {
				pc.parentTree = pcm.TreeHash
			}
		}
	}
	return pc, nil
}

func (c *packCheck) inPack(h plumbing.Hash) bool { return c.in.HasEncodedObject(h) == nil }
func (c *packCheck) inMain(h plumbing.Hash) bool { return c.main.HasEncodedObject(h) == nil }
func (c *packCheck) has(h plumbing.Hash) bool    { return c.inPack(h) || c.inMain(h) }

func (c *packCheck) object(t plumbing.ObjectType, h plumbing.Hash) (plumbing.EncodedObject, error) {
	if o, err := c.in.EncodedObject(t, h); err == nil {
		return o, nil
	}
	return c.main.EncodedObject(t, h)
}

// tree checks that every object of tree h that differs from tree base's
// (zero: all of them) is present, without recursion.
func (c *packCheck) tree(h, base plumbing.Hash) error {
	type pair struct{ tree, base plumbing.Hash }
	stack := []pair{{h, base}}
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if p.tree == p.base {
			continue // the base is complete
		}
		t, err := c.readTree(p.tree)
		if err != nil {
			return err
		}
		var b map[string]object.TreeEntry
		if !p.base.IsZero() {
			if bt, err := c.readTree(p.base); err == nil {
				b = make(map[string]object.TreeEntry, len(bt.Entries))
				for _, e := range bt.Entries {
					b[e.Name] = e
				}
			}
		}
		c.budget -= len(t.Entries)
		if c.budget < 0 {
			return errCheckBudget
		}
		for _, e := range t.Entries {
			old, inBase := b[e.Name]
			switch {
			case e.Mode == filemode.Submodule:
				// A gitlink names a commit of another repository.
			case e.Mode == filemode.Dir:
				var ob plumbing.Hash
				if inBase && old.Mode == filemode.Dir {
					ob = old.Hash
				}
				stack = append(stack, pair{e.Hash, ob})
			case inBase && old.Hash == e.Hash:
				// The base's blob: present.
			case !c.has(e.Hash):
				return fmt.Errorf("%s (%s): %w", e.Name, e.Hash, errIncomplete)
			}
		}
	}
	return nil
}

// readTree reads tree h from the pack or the cache; a tree in neither
// makes the pack incomplete.
func (c *packCheck) readTree(h plumbing.Hash) (*object.Tree, error) {
	o, err := c.object(plumbing.TreeObject, h)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return nil, fmt.Errorf("tree %s: %w", h, errIncomplete)
	}
	if err != nil {
		return nil, err
	}
	var t object.Tree
	if err := t.Decode(o); err != nil {
		return nil, err
	}
	return &t, nil
}

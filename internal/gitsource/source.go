package gitsource

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"
)

// Options configure a Source. Zero fields take the documented defaults.
type Options struct {
	// CacheDir holds one bare repository per URL and the checkouts. Required.
	CacheDir string
	// LsRemoteTTL lets Applications sharing a repository (and credential)
	// share one ls-remote within this window. Default 1s.
	LsRemoteTTL time.Duration
	// MaxCheckoutBytes bounds the files written for one commit. Default 256 MiB.
	MaxCheckoutBytes int64
	// MaxCheckoutFiles bounds the number of files of one commit. Default 20000.
	MaxCheckoutFiles int
	// KeepCheckouts is how many checkouts per repository are kept after
	// use (most recently used first); older ones not in use are deleted.
	// Default 4.
	KeepCheckouts int
	// Timeout bounds each ls-remote and each fetch: a server that accepts
	// and never answers holds a worker no longer than this. Default 60s.
	Timeout time.Duration
	// MaxRefs bounds the refs one ls-remote may advertise. Default 50000.
	MaxRefs int
	// MaxAdvertisementBytes bounds the bytes of one ls-remote answer.
	// Default 64 MiB.
	MaxAdvertisementBytes int64
	// MaxFetchBytes bounds the bytes of one fetch (the pack). Default 512 MiB.
	MaxFetchBytes int64
	// Observe, when set, is told of every ls-remote and fetch (for metrics).
	Observe func(op string, d time.Duration, err error)
}

// Source is the shared Git cache of a controller. It is safe for concurrent use.
type Source struct {
	opts  Options
	mu    sync.Mutex
	repos map[string]*repo

	coMu     sync.Mutex
	inUse    map[string]int       // checkout dir → holders
	lastUsed map[string]time.Time // checkout dir → last Checkout
	verified map[string]bool      // checkout dirs written or verified by this process
}

type repo struct {
	mu     sync.Mutex // serialises fetch and checkout of this URL
	url    string
	dir    string
	lsMu   sync.Mutex
	lsAt   map[string]time.Time // credential hash → time of last ls-remote
	lsRefs map[string][]*plumbing.Reference

	usedMu sync.Mutex
	used   time.Time // last Resolve, Fetch or Checkout, for Retain

	sshHanging atomic.Bool // an SSH operation past its deadline still runs
}

func (r *repo) touch() {
	r.usedMu.Lock()
	r.used = time.Now()
	r.usedMu.Unlock()
}

func (r *repo) lastUse() time.Time {
	r.usedMu.Lock()
	defer r.usedMu.Unlock()
	return r.used
}

// Revision is a resolved target revision.
type Revision struct {
	// Ref is the full ref name (refs/heads/main), or "" for a commit SHA.
	Ref string
	// SHA is the commit.
	SHA string
}

// New returns a Source caching in opts.CacheDir.
func New(opts Options) (*Source, error) {
	if opts.CacheDir == "" {
		return nil, errors.New("gitsource: a cache dir is required")
	}
	if opts.LsRemoteTTL == 0 {
		opts.LsRemoteTTL = time.Second
	}
	if opts.MaxCheckoutBytes == 0 {
		opts.MaxCheckoutBytes = 256 << 20
	}
	if opts.MaxCheckoutFiles == 0 {
		opts.MaxCheckoutFiles = 20000
	}
	if opts.KeepCheckouts == 0 {
		opts.KeepCheckouts = 4
	}
	if opts.Timeout == 0 {
		opts.Timeout = 60 * time.Second
	}
	if opts.MaxRefs == 0 {
		opts.MaxRefs = 50000
	}
	if opts.MaxAdvertisementBytes == 0 {
		opts.MaxAdvertisementBytes = 64 << 20
	}
	if opts.MaxFetchBytes == 0 {
		opts.MaxFetchBytes = 512 << 20
	}
	installCappedHTTP()
	if err := os.MkdirAll(filepath.Join(opts.CacheDir, "checkouts"), 0o700); err != nil {
		return nil, fmt.Errorf("creating git cache: %w", err)
	}
	return &Source{opts: opts, repos: map[string]*repo{}, inUse: map[string]int{}, lastUsed: map[string]time.Time{}, verified: map[string]bool{}}, nil
}

func hashOf(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:8])
}

func (s *Source) repo(url string) *repo {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.repos[url]
	if !ok {
		r = &repo{url: url, dir: filepath.Join(s.opts.CacheDir, "repos", hashOf(url)), lsAt: map[string]time.Time{}, lsRefs: map[string][]*plumbing.Reference{}}
		s.repos[url] = r
	}
	r.touch()
	return r
}

func (s *Source) observe(op string, start time.Time, err error) {
	if s.opts.Observe != nil {
		s.opts.Observe(op, time.Since(start), err)
	}
}

var shaRE = regexp.MustCompile(`^[0-9a-f]{40}$`)

// maxCredentialsPerRepo bounds the ls-remote results kept per repository
// (one per credential).
const maxCredentialsPerRepo = 64

// ErrTooManyRefs is returned (wrapped) when a server advertises more refs
// than Options.MaxRefs.
var ErrTooManyRefs = errors.New("too many refs")

// authKey identifies a credential (secret included, hashed) without keeping
// it, so a cached ls-remote is only shared by callers holding the same one.
func authKey(auth transport.AuthMethod) string {
	switch a := auth.(type) {
	case nil:
		return "none"
	case *githttp.BasicAuth:
		return hashOf("basic\x00" + a.Username + "\x00" + a.Password)
	case *githttp.TokenAuth:
		return hashOf("token\x00" + a.Token)
	case sshTimeoutAuth:
		return authKey(a.AuthMethod)
	default:
		// Not shareable (e.g. an SSH key object): unique per credential object.
		return fmt.Sprintf("%T %p", auth, auth)
	}
}

// Resolve finds the commit of revision (a branch, a tag, a full ref, a
// commit SHA, or "" / HEAD for the default branch) with an ls-remote, using
// this caller's credential. It is the cheap per-interval check: no fetch.
func (s *Source) Resolve(ctx context.Context, url, revision string, auth transport.AuthMethod) (Revision, error) {
	auth, isSSH := withSSHTimeout(auth, s.opts.Timeout)
	if !isSSH {
		rev, err := s.resolve(ctx, url, revision, auth)
		return rev, redactErr(url, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	rev, err := boundSSH(ctx, &s.repo(url).sshHanging, s.opts.Timeout, func() (Revision, error) {
		return s.resolve(ctx, url, revision, auth)
	})
	return rev, redactErr(url, err)
}

func (s *Source) resolve(ctx context.Context, url, revision string, auth transport.AuthMethod) (Revision, error) {
	// Always ask the server, even for a commit SHA: the ls-remote with this
	// caller's credential is what authorises it to read the shared cache.
	// A SHA alone is not a key (another tenant may know it).
	refs, err := s.lsRemote(ctx, url, auth)
	if err != nil {
		return Revision{}, err
	}
	if shaRE.MatchString(revision) {
		return Revision{SHA: revision}, nil
	}
	byName := map[string]*plumbing.Reference{}
	for _, r := range refs {
		byName[r.Name().String()] = r
	}
	var candidates []string
	switch {
	case revision == "" || revision == "HEAD":
		head, ok := byName["HEAD"]
		if !ok {
			return Revision{}, fmt.Errorf("%s has no HEAD (empty repository?)", url)
		}
		if head.Type() == plumbing.SymbolicReference {
			candidates = []string{head.Target().String()}
		} else {
			return Revision{Ref: "HEAD", SHA: head.Hash().String()}, nil
		}
	case strings.HasPrefix(revision, "refs/"):
		candidates = []string{revision}
	default:
		candidates = []string{"refs/heads/" + revision, "refs/tags/" + revision}
	}
	for _, name := range candidates {
		if peeled, ok := byName[name+"^{}"]; ok { // annotated tag
			return Revision{Ref: name, SHA: peeled.Hash().String()}, nil
		}
		if r, ok := byName[name]; ok {
			return Revision{Ref: name, SHA: r.Hash().String()}, nil
		}
	}
	return Revision{}, fmt.Errorf("revision %q not found in %s (branches: %s)", revision, url, strings.Join(branchNames(refs, 8), ", "))
}

func branchNames(refs []*plumbing.Reference, n int) []string {
	var out []string
	for _, r := range refs {
		if r.Name().IsBranch() {
			out = append(out, r.Name().Short())
		}
	}
	sort.Strings(out)
	if len(out) > n {
		out = append(out[:n], "…")
	}
	return out
}

func (s *Source) lsRemote(ctx context.Context, url string, auth transport.AuthMethod) ([]*plumbing.Reference, error) {
	r := s.repo(url)
	key := authKey(auth)
	r.lsMu.Lock()
	defer r.lsMu.Unlock()
	if at, ok := r.lsAt[key]; ok && time.Since(at) < s.opts.LsRemoteTTL {
		return r.lsRefs[key], nil
	}
	start := time.Now()
	rem := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{url}})
	lctx, cancel := context.WithTimeout(withReadCap(ctx, s.opts.MaxAdvertisementBytes), s.opts.Timeout)
	defer cancel()
	refs, err := rem.ListContext(lctx, &git.ListOptions{Auth: auth})
	if err == nil && len(refs) > s.opts.MaxRefs {
		err = fmt.Errorf("the server advertised %d refs, more than the limit of %d: %w", len(refs), s.opts.MaxRefs, ErrTooManyRefs)
	}
	s.observe("ls-remote", start, err)
	if err != nil {
		if lctx.Err() != nil && ctx.Err() == nil {
			err = fmt.Errorf("no answer within %s (--git-timeout): %w", s.opts.Timeout, err)
		}
		return nil, fmt.Errorf("ls-remote %s: %w", url, explain(err))
	}
	if len(r.lsAt) >= maxCredentialsPerRepo {
		// Many credentials for one URL: forget them all rather than grow.
		r.lsAt, r.lsRefs = map[string]time.Time{}, map[string][]*plumbing.Reference{}
	}
	r.lsAt[key] = time.Now()
	r.lsRefs[key] = refs
	return refs, nil
}

// explain makes transport errors say what to do.
func explain(err error) error {
	switch {
	case errors.Is(err, transport.ErrAuthenticationRequired):
		return fmt.Errorf("%w: the repository needs credentials; set spec.source.secretRef", err)
	case errors.Is(err, transport.ErrAuthorizationFailed):
		return fmt.Errorf("%w: the credential in spec.source.secretRef is refused", err)
	case errors.Is(err, transport.ErrRepositoryNotFound):
		return fmt.Errorf("%w: check spec.source.repoURL", err)
	}
	return err
}

// Fetch makes sure rev's commit is in the cache, fetching (shallow, just that
// ref) only when it is missing. The caller must have resolved rev with its
// own credential first, so the shared cache never serves a repository to
// someone who cannot read it.
func (s *Source) Fetch(ctx context.Context, url string, rev Revision, auth transport.AuthMethod) error {
	auth, isSSH := withSSHTimeout(auth, s.opts.Timeout)
	if !isSSH {
		return redactErr(url, s.fetch(ctx, url, rev, auth))
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	_, err := boundSSH(ctx, &s.repo(url).sshHanging, s.opts.Timeout, func() (struct{}, error) {
		return struct{}{}, s.fetch(ctx, url, rev, auth)
	})
	return redactErr(url, err)
}

func (s *Source) fetch(ctx context.Context, url string, rev Revision, auth transport.AuthMethod) error {
	r := s.repo(url)
	r.mu.Lock()
	defer r.mu.Unlock()
	repo, err := r.open()
	if err != nil {
		return err
	}
	if _, err := repo.CommitObject(plumbing.NewHash(rev.SHA)); err == nil {
		return nil
	}
	// The remote is built from the URL the caller resolved, never read from
	// the cached repository's config: nothing in the cache decides where a
	// credential is sent.
	rem := git.NewRemote(repo.Storer, &config.RemoteConfig{Name: "origin", URLs: []string{r.url}})
	start := time.Now()
	err = s.fetchRevision(ctx, rem, rev, auth)
	s.observe("fetch", start, err)
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			err = fmt.Errorf("no answer within %s (--git-timeout): %w", s.opts.Timeout, err)
		}
		return fmt.Errorf("fetching %s from %s: %w", rev.SHA, url, explain(err))
	}
	if _, err := repo.CommitObject(plumbing.NewHash(rev.SHA)); err != nil {
		return fmt.Errorf("commit %s is not in %s (was the branch force-pushed?): %w", rev.SHA, url, err)
	}
	return nil
}

// fetchRevision fetches just what rev needs: the tip of its ref (depth 1),
// or for a bare commit SHA that commit alone (depth 1) when the server allows
// wants by SHA, else every branch.
func (s *Source) fetchRevision(ctx context.Context, rem *git.Remote, rev Revision, auth transport.AuthMethod) error {
	ctx, cancel := context.WithTimeout(withReadCap(ctx, s.opts.MaxFetchBytes), s.opts.Timeout)
	defer cancel()
	opts := &git.FetchOptions{RemoteName: "origin", Auth: auth, Tags: git.NoTags, Force: true, Depth: 1}
	switch {
	case rev.Ref != "" && rev.Ref != "HEAD":
		opts.RefSpecs = []config.RefSpec{config.RefSpec("+" + rev.Ref + ":refs/keyless/" + strings.TrimPrefix(rev.Ref, "refs/"))}
	case rev.Ref == "HEAD":
		opts.RefSpecs = []config.RefSpec{"+HEAD:refs/keyless/HEAD"}
	default:
		opts.RefSpecs = []config.RefSpec{config.RefSpec(rev.SHA + ":refs/keyless/pinned/" + rev.SHA)}
		err := rem.FetchContext(ctx, opts)
		if !errors.Is(err, git.ErrExactSHA1NotSupported) {
			return err
		}
		opts.Depth = 0
		opts.RefSpecs = []config.RefSpec{"+refs/heads/*:refs/keyless/heads/*", "+HEAD:refs/keyless/HEAD"}
	}
	return rem.FetchContext(ctx, opts)
}

func (r *repo) open() (*git.Repository, error) {
	repo, err := git.PlainOpen(r.dir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		if repo, err = git.PlainInit(r.dir, true); err != nil {
			return nil, fmt.Errorf("creating git cache %s: %w", r.dir, err)
		}
		if _, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{r.url}}); err != nil {
			return nil, fmt.Errorf("creating git cache %s: %w", r.dir, err)
		}
		return repo, nil
	}
	if err != nil {
		return nil, fmt.Errorf("opening git cache %s: %w", r.dir, err)
	}
	return repo, nil
}

// Checkout returns a folder holding the files of commit sha (fetched before),
// written once and then shared; treat it as read-only, and call release when
// done reading it. Checkouts of a repository beyond the KeepCheckouts most
// recently used, and not in use, are deleted.
func (s *Source) Checkout(url, sha string) (dir string, release func(), err error) {
	dir = filepath.Join(s.opts.CacheDir, "checkouts", hashOf(url)+"-"+sha)
	s.hold(dir)
	release = func() { s.releaseCheckout(url, dir) }
	if err := s.writeCheckout(url, sha, dir); err != nil {
		release()
		return "", nil, redactErr(url, err)
	}
	return dir, release, nil
}

func (s *Source) hold(dir string) {
	s.coMu.Lock()
	s.inUse[dir]++
	s.lastUsed[dir] = time.Now()
	s.coMu.Unlock()
}

// releaseCheckout drops a hold on dir, then deletes the repository's
// checkouts that are neither in use nor among the most recently used.
func (s *Source) releaseCheckout(url, dir string) {
	s.coMu.Lock()
	defer s.coMu.Unlock()
	if s.inUse[dir]--; s.inUse[dir] <= 0 {
		delete(s.inUse, dir)
	}
	root := filepath.Join(s.opts.CacheDir, "checkouts")
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	prefix := hashOf(url) + "-"
	var dirs []string
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), prefix) {
			dirs = append(dirs, filepath.Join(root, e.Name()))
		}
	}
	// Most recently used first; checkouts from before a restart are oldest.
	sort.Slice(dirs, func(i, j int) bool { return s.lastUsed[dirs[i]].After(s.lastUsed[dirs[j]]) })
	for i, d := range dirs {
		if i < s.opts.KeepCheckouts || s.inUse[d] > 0 {
			continue
		}
		if err := removeCheckout(d); err == nil {
			delete(s.lastUsed, d)
			delete(s.verified, d)
		}
	}
}

// writeCheckout writes the files of sha into dir unless a checkout of the
// same tree is there. A folder is trusted only when the record beside it
// (dir + ".tree", written after the folder was complete) names the commit's
// tree; anything else in its place is deleted and written anew.
func (s *Source) writeCheckout(url, sha, dir string) error {
	if s.trusted(dir) {
		return nil
	}
	r := s.repo(url)
	r.mu.Lock()
	defer r.mu.Unlock()
	repo, err := r.open()
	if err != nil {
		return err
	}
	c, err := repo.CommitObject(plumbing.NewHash(sha))
	if err != nil {
		return fmt.Errorf("commit %s: %w", sha, err)
	}
	tree, err := c.Tree()
	if err != nil {
		return fmt.Errorf("commit %s: %w", sha, err)
	}
	if rec, err := os.ReadFile(dir + treeSuffix); err == nil && string(rec) == tree.Hash.String() {
		if fi, err := os.Lstat(dir); err == nil && fi.IsDir() {
			s.trust(dir)
			return nil
		}
	}
	_ = os.Remove(dir + treeSuffix)
	if err := removeTree(dir); err != nil {
		return fmt.Errorf("removing a stale checkout %s: %w", dir, err)
	}
	tmp, err := os.MkdirTemp(filepath.Join(s.opts.CacheDir, "checkouts"), ".tmp-")
	if err != nil {
		return err
	}
	if err := s.writeTree(repo.Storer, tree, tmp); err != nil {
		_ = removeTree(tmp)
		return fmt.Errorf("checking out %s: %w", sha, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		_ = removeTree(tmp)
		return err
	}
	if err := os.Chmod(dir, 0o555); err != nil {
		return err
	}
	if err := os.WriteFile(dir+treeSuffix, []byte(tree.Hash.String()), 0o400); err != nil {
		return fmt.Errorf("recording checkout %s: %w", dir, err)
	}
	s.trust(dir)
	return nil
}

// writeTree writes tree into the empty folder dir, confined to it.
func (s *Source) writeTree(store storer.EncodedObjectStorer, tree *object.Tree, dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer func() { _ = root.Close() }()
	w := &treeWriter{store: store, root: root, maxFiles: s.opts.MaxCheckoutFiles, maxBytes: s.opts.MaxCheckoutBytes}
	if err := w.write(tree, ".", 0); err != nil {
		return err
	}
	if err := w.checkLinks(); err != nil {
		return err
	}
	return w.readOnly()
}

// trusted reports a checkout this process wrote or verified.
func (s *Source) trusted(dir string) bool {
	s.coMu.Lock()
	defer s.coMu.Unlock()
	return s.verified[dir]
}

func (s *Source) trust(dir string) {
	s.coMu.Lock()
	s.verified[dir] = true
	s.coMu.Unlock()
}

// Invalidate drops the cached ls-remote results of url, so the next Resolve
// asks the server (a webhook said it moved).
func (s *Source) Invalidate(url string) {
	r := s.repo(url)
	r.lsMu.Lock()
	r.lsAt, r.lsRefs = map[string]time.Time{}, map[string][]*plumbing.Reference{}
	r.lsMu.Unlock()
}

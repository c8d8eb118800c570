package gitsource

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"
)

// Resolving a target revision: ls-remote, shared per URL and credential
// within LsRemoteTTL, and explanations of what the server said.

// Resolve finds the commit of revision (a branch, a tag, a full ref, a
// commit SHA, or "" / HEAD for the default branch) with an ls-remote, using
// this caller's credential. It is the cheap per-interval check: no fetch.
func (s *Source) Resolve(ctx context.Context, url, revision string, auth transport.AuthMethod) (Revision, error) {
	return s.ResolveWithin(ctx, url, revision, auth, 0)
}

// ResolveWithin is Resolve that accepts the answer of an ls-remote made
// with the same credential up to maxAge ago (LsRemoteTTL when shorter): a
// periodic pass passes its interval, so that any number of Applications
// polling one repository cost one ls-remote per interval. Invalidate (a
// webhook, `keyless sync`) makes the next call ask the server.
func (s *Source) ResolveWithin(ctx context.Context, url, revision string, auth transport.AuthMethod, maxAge time.Duration) (Revision, error) {
	maxAge = max(maxAge, s.opts.LsRemoteTTL)
	auth, isSSH := withSSHTimeout(auth, s.opts.Timeout)
	if !isSSH {
		rev, err := s.resolve(ctx, url, revision, auth, maxAge)
		return rev, redactErr(url, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	rev, err := boundSSH(ctx, &s.repo(url).sshHanging, s.opts.Timeout, func() (Revision, error) {
		return s.resolve(ctx, url, revision, auth, maxAge)
	})
	return rev, redactErr(url, err)
}

func (s *Source) resolve(ctx context.Context, url, revision string, auth transport.AuthMethod, maxAge time.Duration) (Revision, error) {
	// Always ask the server (or reuse its recent answer to this same
	// credential), even for a commit SHA: the ls-remote with this caller's
	// credential is what authorises it to read the shared cache. A SHA
	// alone is not a key (another tenant may know it).
	refs, err := s.lsRemote(ctx, url, auth, maxAge)
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

func (s *Source) lsRemote(ctx context.Context, url string, auth transport.AuthMethod, maxAge time.Duration) ([]*plumbing.Reference, error) {
	r := s.repo(url)
	key := authKey(auth)
	r.lsMu.Lock()
	defer r.lsMu.Unlock()
	if at, ok := r.lsAt[key]; ok && time.Since(at) < maxAge {
		return r.lsRefs[key], nil
	}
	start := time.Now()
	rem := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: remoteName, URLs: []string{url}})
	lctx, cancel := context.WithTimeout(withReadCap(ctx, s.opts.MaxAdvertisementBytes), s.opts.Timeout)
	defer cancel()
	refs, err := rem.ListContext(lctx, &git.ListOptions{Auth: auth})
	if err == nil && len(refs) > s.opts.MaxRefs {
		err = fmt.Errorf("the server advertised %d refs, more than the limit of %d: %w", len(refs), s.opts.MaxRefs, ErrTooManyRefs)
	}
	s.observe("ls-remote", url, start, err)
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

// Invalidate drops the cached ls-remote results of url, so the next Resolve
// asks the server (a webhook said it moved).
func (s *Source) Invalidate(url string) {
	r := s.repo(url)
	r.lsMu.Lock()
	r.lsAt, r.lsRefs = map[string]time.Time{}, map[string][]*plumbing.Reference{}
	r.lsMu.Unlock()
}

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

package bump

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"github.com/keyless-cd/keyless/internal/confine"
	"github.com/keyless-cd/keyless/internal/gitsource"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// Request is one bump: the edits to make in one file.
type Request struct {
	// File is the YAML file, relative to the checkout root.
	File string
	// Sets are path=value edits.
	Sets []SetValue
	// Images are image edits (kustomization or workload manifests).
	Images []ImageRef
}

// SetValue is one --set.
type SetValue struct {
	Path  Path
	Value string
}

// ParseSet parses "path=value".
func ParseSet(s string) (SetValue, error) {
	p, v, ok := strings.Cut(s, "=")
	if !ok {
		return SetValue{}, fmt.Errorf("--set %q: want path=value, e.g. image.tag=abc123", s)
	}
	path, err := ParsePath(p)
	if err != nil {
		return SetValue{}, fmt.Errorf("--set %q: %w", s, err)
	}
	return SetValue{Path: path, Value: v}, nil
}

// Identity is a Git author or committer.
type Identity struct {
	Name, Email string
}

// ParseIdentity parses "Name <email>".
func ParseIdentity(s string) (Identity, error) {
	open, end := strings.LastIndexByte(s, '<'), strings.LastIndexByte(s, '>')
	if open < 0 || end < open {
		return Identity{}, fmt.Errorf("%q: want \"Name <email>\"", s)
	}
	id := Identity{Name: strings.TrimSpace(s[:open]), Email: strings.TrimSpace(s[open+1 : end])}
	if id.Name == "" || id.Email == "" {
		return Identity{}, fmt.Errorf("%q: want \"Name <email>\"", s)
	}
	return id, nil
}

// Options configure Run.
type Options struct {
	// Dir is an existing checkout (used when RepoURL is empty).
	Dir string
	// RepoURL is cloned (shallow) into a temporary directory instead.
	RepoURL string
	// Branch to commit to and push. Default: the checkout's current branch,
	// or the remote's default branch when cloning.
	Branch string
	// Auth is the Git credential (a deploy key or token, never a cluster one).
	Auth transport.AuthMethod
	// Commit makes a commit; Push pushes it (implies Commit).
	Commit, Push bool
	// Message is a text/template over .File and .Changes. Default:
	// "chore(deploy): <file> <path>=<value>[, …]".
	Message string
	// Committer is the CI bot; Author the person who triggered the pipeline
	// (default: Committer).
	Committer Identity
	Author    *Identity
	// Trailers are appended to the message ("Key: value").
	Trailers []string
	// SkipCI appends "[skip ci]" to the subject.
	SkipCI bool
	// Signer signs the commit (e.g. an SSH key).
	Signer git.Signer
	// Timeout bounds the retries of a rejected (non-fast-forward) push on
	// the new tip (exponential backoff, full jitter). Default DefaultTimeout.
	Timeout time.Duration
	// Retries, when set, also bounds how often it is retried. Default 0:
	// until Timeout.
	Retries int
}

// Result is what Run did.
type Result struct {
	File     string   `json:"file"`
	Changes  []Change `json:"changes"`
	Commit   string   `json:"commit,omitempty"`
	Attempts int      `json:"attempts"`
	// UpToDate is true when every value already had its target: nothing was
	// written or committed.
	UpToDate bool `json:"upToDate"`
}

// EditFile applies req to the file in root. It writes nothing when every
// value is already at its target, and nothing at all on any error.
func EditFile(root string, req Request) ([]Change, bool, error) {
	rel, err := confine.Lexical(root, root, req.File)
	if err != nil {
		return nil, false, fmt.Errorf("--file %s: %w", req.File, err)
	}
	// Every read and write goes through root, and no part of the path may be
	// a symlink: a committed link must not make CI edit a file elsewhere.
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, false, err
	}
	defer func() { _ = r.Close() }()
	if err := confine.NoSymlinks(r, rel); err != nil {
		if errors.Is(err, confine.ErrSymlink) {
			return nil, false, fmt.Errorf("--file %s: %w: %w; name the file it points to", req.File, err, ErrSymlink)
		}
		return nil, false, fmt.Errorf("%s: %w", req.File, err)
	}
	fi, err := r.Stat(rel)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", req.File, err)
	}
	if fi.Size() > MaxFileBytes {
		return nil, false, fmt.Errorf("%s: larger than %d bytes", req.File, MaxFileBytes)
	}
	data, err := r.ReadFile(rel)
	if err != nil {
		return nil, false, err
	}
	f, err := Parse(req.File, data)
	if err != nil {
		return nil, false, err
	}
	for _, s := range req.Sets {
		if err := f.Set(s.Path, s.Value); err != nil {
			return nil, false, err
		}
	}
	for _, img := range req.Images {
		if _, err := f.SetImage(img); err != nil {
			return nil, false, err
		}
	}
	if !f.Changed() {
		return f.Changes(), false, nil
	}
	out, err := f.Bytes()
	if err != nil {
		return nil, false, err
	}
	tmp := rel + ".keyless-tmp"
	if err := r.WriteFile(tmp, out, fi.Mode().Perm()); err != nil {
		return nil, false, err
	}
	if err := r.Rename(tmp, rel); err != nil {
		_ = r.Remove(tmp)
		return nil, false, err
	}
	return f.Changes(), true, nil
}

// ErrSymlink is returned (wrapped) when the file to edit, or a folder on
// its way, is a symlink.
var ErrSymlink = errors.New("refusing to edit through a symlink")

// Run edits, and optionally commits and pushes, retrying a rejected push by
// re-applying the same edit on the new tip (not by rebasing the old commit).
func Run(ctx context.Context, req Request, opts Options) (*Result, error) {
	if opts.Push {
		opts.Commit = true
	}
	res := &Result{File: req.File}
	dir := opts.Dir
	var repo *git.Repository
	var err error
	switch {
	case opts.RepoURL != "":
		// The user an SSH URL names is the SSH user, as with git.
		opts.Auth = gitsource.ForURL(opts.Auth, opts.RepoURL)
		tmp, err := os.MkdirTemp("", "keyless-bump-")
		if err != nil {
			return nil, err
		}
		defer func() { _ = os.RemoveAll(tmp) }()
		clone := &git.CloneOptions{URL: opts.RepoURL, Auth: opts.Auth, Depth: 1, SingleBranch: true}
		if opts.Branch != "" {
			clone.ReferenceName = plumbing.NewBranchReferenceName(opts.Branch)
		}
		if repo, err = git.PlainCloneContext(ctx, tmp, false, clone); err != nil {
			return nil, fmt.Errorf("cloning %s: %w", opts.RepoURL, err)
		}
		dir = tmp
	case opts.Commit:
		if repo, err = git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{DetectDotGit: true}); err != nil {
			return nil, fmt.Errorf("opening the Git checkout at %s: %w", dir, err)
		}
		if origin, err := repo.Remote("origin"); err == nil && len(origin.Config().URLs) > 0 {
			opts.Auth = gitsource.ForURL(opts.Auth, origin.Config().URLs[0])
		}
	}
	if !opts.Commit {
		changes, changed, err := EditFile(dir, req)
		res.Changes, res.UpToDate, res.Attempts = changes, !changed, 1
		return res, err
	}
	wt, err := repo.Worktree()
	if err != nil {
		return nil, err
	}
	root := wt.Filesystem.Root()
	if opts.RepoURL == "" {
		// --file is relative to --dir; make it relative to the repository root.
		absDir, _ := filepath.Abs(dir)
		if rel, err := filepath.Rel(root, filepath.Join(absDir, req.File)); err == nil {
			req.File = rel
		}
	}
	if opts.Branch == "" {
		head, err := repo.Head()
		if err != nil {
			return nil, fmt.Errorf("reading HEAD: %w", err)
		}
		if !head.Name().IsBranch() {
			return nil, errors.New("the checkout is on a detached HEAD: pass --branch")
		}
		opts.Branch = head.Name().Short()
	}
	attempt := func(n int) (plumbing.Hash, bool, error) {
		changes, changed, err := EditFile(root, req)
		if err != nil {
			return plumbing.ZeroHash, false, err
		}
		res.Changes = changes
		if !changed {
			res.UpToDate = true
			return plumbing.ZeroHash, false, nil
		}
		hash, err := commit(wt, req, changes, opts)
		if err != nil {
			return plumbing.ZeroHash, false, err
		}
		res.Commit = hash.String()
		return hash, true, nil
	}
	if !opts.Push {
		res.Attempts = 1
		_, _, err := attempt(1)
		return res, err
	}
	pushed, err := PushRetrying(ctx, repo, PushOptions{
		Branch: opts.Branch, Auth: opts.Auth, Timeout: opts.Timeout, Retries: opts.Retries, FetchDepth: 1,
		Reset: func(tip plumbing.Hash) error {
			return wt.Reset(&git.ResetOptions{Commit: tip, Mode: git.HardReset})
		},
	}, attempt)
	res.Attempts = pushed.Attempts
	return res, err
}

// DefaultMessage is the commit message template when none is given.
const DefaultMessage = `chore(deploy): {{.File}}{{range $i, $c := .Changes}}{{if $i}},{{end}} {{$c.Path}}={{$c.New}}{{end}}`

func commit(wt *git.Worktree, req Request, changes []Change, opts Options) (plumbing.Hash, error) {
	tmplText := opts.Message
	if tmplText == "" {
		tmplText = DefaultMessage
	}
	tmpl, err := template.New("message").Option("missingkey=error").Parse(tmplText)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("--message: %w", err)
	}
	var changed []Change
	for _, c := range changes {
		if c.Old != c.New {
			changed = append(changed, c)
		}
	}
	var msg bytes.Buffer
	if err := tmpl.Execute(&msg, map[string]any{"File": req.File, "Changes": changed}); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("--message: %w", err)
	}
	text := strings.TrimSpace(msg.String())
	if opts.SkipCI {
		subject, body, _ := strings.Cut(text, "\n")
		text = strings.TrimSpace(subject + " [skip ci]\n" + body)
	}
	if len(opts.Trailers) > 0 {
		text += "\n\n" + strings.Join(opts.Trailers, "\n")
	}
	if _, err := wt.Add(filepath.ToSlash(req.File)); err != nil {
		return plumbing.ZeroHash, err
	}
	now := time.Now()
	committer := &object.Signature{Name: opts.Committer.Name, Email: opts.Committer.Email, When: now}
	author := committer
	if opts.Author != nil {
		author = &object.Signature{Name: opts.Author.Name, Email: opts.Author.Email, When: now}
	}
	return wt.Commit(text+"\n", &git.CommitOptions{Author: author, Committer: committer, Signer: opts.Signer})
}

// FromCIEnv returns the author and trailers a CI platform provides: GitLab
// (GITLAB_USER_NAME/EMAIL, CI_PIPELINE_URL, CI_COMMIT_SHA) or GitHub
// (GITHUB_ACTOR, GITHUB_SERVER_URL/REPOSITORY/RUN_ID, GITHUB_SHA).
func FromCIEnv(getenv func(string) string) (*Identity, []string) {
	var author *Identity
	var trailers []string
	switch {
	case getenv("GITLAB_CI") != "" || getenv("GITLAB_USER_EMAIL") != "":
		if getenv("GITLAB_USER_EMAIL") != "" {
			author = &Identity{Name: getenv("GITLAB_USER_NAME"), Email: getenv("GITLAB_USER_EMAIL")}
			if author.Name == "" {
				author.Name = getenv("GITLAB_USER_LOGIN")
			}
		}
		if u := getenv("CI_PIPELINE_URL"); u != "" {
			trailers = append(trailers, "Pipeline: "+u)
		}
		if s := getenv("CI_COMMIT_SHA"); s != "" {
			trailers = append(trailers, "Source-Commit: "+s)
		}
	case getenv("GITHUB_ACTIONS") != "" || getenv("GITHUB_ACTOR") != "":
		if a := getenv("GITHUB_ACTOR"); a != "" {
			author = &Identity{Name: a, Email: a + "@users.noreply.github.com"}
		}
		if getenv("GITHUB_RUN_ID") != "" {
			trailers = append(trailers, fmt.Sprintf("Pipeline: %s/%s/actions/runs/%s", getenv("GITHUB_SERVER_URL"), getenv("GITHUB_REPOSITORY"), getenv("GITHUB_RUN_ID")))
		}
		if s := getenv("GITHUB_SHA"); s != "" {
			trailers = append(trailers, "Source-Commit: "+s)
		}
	}
	if author != nil && author.Name == "" {
		author.Name = author.Email
	}
	return author, trailers
}

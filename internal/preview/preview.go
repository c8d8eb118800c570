// Package preview renders the Applications of a Git checkout at two
// revisions, exactly as the controller would, and reports what a merge
// request would change in each: objects added, removed and changed, with a
// unified diff of each change and Secret values masked. It needs no cluster.
package preview

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/confine"
	"github.com/keyless-cd/keyless/internal/controller"
	"github.com/keyless-cd/keyless/internal/gitsource"
	"github.com/keyless-cd/keyless/internal/render"
)

// Renderer renders one directory (renderproc.Runner: in a bounded child
// process, as the controller does).
type Renderer interface {
	Render(ctx context.Context, opts render.Options) (*render.Result, error)
}

// ErrNotPreviewable names an Application whose source preview cannot read
// from the checkout (a chart from a repository).
var ErrNotPreviewable = errors.New("not previewable")

// ErrRenderFailed is returned (wrapped) by Report.Err when an Application
// does not render at the head revision: the merge request would break it.
var ErrRenderFailed = errors.New("an Application does not render at the head revision")

// ErrInvalidSpec is returned (wrapped) by Report.Err when the controller
// would refuse an Application's spec at the head revision: a
// spec.healthCheckExprs entry that does not compile.
var ErrInvalidSpec = errors.New("an Application's spec is invalid at the head revision")

// Options configure Run.
type Options struct {
	// Dir is inside the Git checkout to preview. Required.
	Dir string
	// Base is the revision the change is compared with (the merge request's
	// target or merge base). Required.
	Base string
	// Head is the revision under review. Default "HEAD".
	Head string
	// Files are Application manifests (paths as given on the command line,
	// read at each revision) to preview. Empty: every Application found in
	// the repository at either revision whose spec.source.repoURL is one of
	// the checkout's remotes.
	Files []string
	// Applications, when set, are previewed at both revisions as they are
	// (e.g. read from the cluster by `keyless rollback --dry-run`) instead
	// of manifests read from the repository; Files is then ignored.
	Applications []*kv1.Application
	// Renderer renders each Application's path. Required.
	Renderer Renderer
	// MaxCheckoutFiles and MaxCheckoutBytes bound each revision's checkout
	// as the controller's are bounded. Default 20000 files, 256 MiB.
	MaxCheckoutFiles int
	MaxCheckoutBytes int64
	// TempDir holds the two checkouts while Run runs. Default os.TempDir().
	TempDir string
	// Capabilities are Helm's .Capabilities for every render (`--kube-version`,
	// `--api-versions`); an Application's own helm.kubeVersion wins.
	// Default: the Kubernetes version keyless is built against and the
	// linked client-go's API versions.
	Capabilities controller.Capabilities
}

// capabilitiesRenderer renders with the preview's Helm capabilities.
type capabilitiesRenderer struct {
	r    Renderer
	caps controller.Capabilities
}

func (c capabilitiesRenderer) Render(ctx context.Context, opts render.Options) (*render.Result, error) {
	c.caps.ApplyTo(&opts)
	return c.r.Render(ctx, opts)
}

// Run previews the change from opts.Base to opts.Head. An Application that
// does not render is reported in its AppReport (Report.Err says whether the
// head is broken); an error is returned only when the preview itself
// cannot run (no repository, unknown revision, unreadable argument).
func Run(ctx context.Context, opts Options) (*Report, error) {
	if opts.Renderer == nil {
		return nil, errors.New("preview: a renderer is required")
	}
	opts.Renderer = capabilitiesRenderer{r: opts.Renderer, caps: opts.Capabilities}
	if opts.Base == "" {
		return nil, errors.New("a base revision is required (--base, e.g. origin/main or $CI_MERGE_REQUEST_DIFF_BASE_SHA)")
	}
	if opts.Head == "" {
		opts.Head = "HEAD"
	}
	repo, err := gitsource.OpenLocal(opts.Dir, opts.MaxCheckoutFiles, opts.MaxCheckoutBytes)
	if err != nil {
		return nil, err
	}
	files, err := repoPaths(repo.Root(), opts.Files)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(opts.TempDir, "keyless-preview-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = gitsource.RemoveTree(tmp) }()

	rep := &Report{}
	var sides [2]*revision
	for i, rev := range []string{opts.Base, opts.Head} {
		sides[i], err = checkout(ctx, repo, rev, filepath.Join(tmp, fmt.Sprint(i)), files, opts.Applications)
		if err != nil {
			return nil, err
		}
	}
	base, head := sides[0], sides[1]
	rep.Base, rep.Head = base.commit, head.commit
	remotes := repo.RemoteURLs()
	for _, key := range appKeys(base.apps, head.apps) {
		b, h := base.apps[key], head.apps[key]
		if len(files) == 0 && len(opts.Applications) == 0 && !fromRemote(b, h, remotes) {
			rep.Skipped = append(rep.Skipped, Skipped{Application: key, Reason: "spec.source.repoURL is not a remote of this checkout (" + repoURLOf(b, h) + "); pass its manifest as an argument to preview it against this repository"})
			continue
		}
		rep.Applications = append(rep.Applications, previewApp(ctx, opts.Renderer, key, base, head, b, h))
	}
	rep.Warnings = append(base.warnings, head.warnings...)
	return rep, nil
}

// revision is one side of the preview: a checkout and its Applications.
type revision struct {
	commit   Commit
	dir      string
	apps     map[string]*found
	warnings []string
}

// checkout writes rev's tree into dir and finds its Applications (apps when
// given, else those in files when given, else all).
func checkout(ctx context.Context, repo *gitsource.Local, rev, dir string, files []string, apps []*kv1.Application) (*revision, error) {
	sha, err := repo.Resolve(rev)
	if err != nil {
		return nil, err
	}
	c, err := repo.Commit(sha)
	if err != nil {
		return nil, err
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, err
	}
	if err := repo.WriteTree(ctx, sha, dir); err != nil {
		return nil, err
	}
	r := &revision{commit: Commit{Revision: rev, SHA: sha, Author: c.Author, Message: c.Message}, dir: dir}
	if len(apps) > 0 {
		r.apps = map[string]*found{}
		for _, a := range apps {
			r.apps[a.Namespace+"/"+a.Name] = &found{app: a, source: "Application " + a.Namespace + "/" + a.Name}
		}
		return r, nil
	}
	r.apps, r.warnings, err = findApplications(dir, files)
	if err != nil {
		return nil, fmt.Errorf("at %s: %w", rev, err)
	}
	return r, nil
}

// repoPaths turns the Application files given on the command line into
// paths relative to the repository root, refusing any outside it.
func repoPaths(root string, files []string) ([]string, error) {
	out := make([]string, 0, len(files))
	for _, f := range files {
		abs, err := filepath.Abs(f)
		if err != nil {
			return nil, err
		}
		if !confine.Within(root, abs) {
			return nil, fmt.Errorf("%s is outside the repository %s: %w", f, root, confine.ErrOutsideRoot)
		}
		out = append(out, confine.Rel(root, abs))
	}
	return out, nil
}

// appKeys returns the namespace/name of every Application on either side,
// sorted.
func appKeys(a, b map[string]*found) []string {
	seen := map[string]bool{}
	var keys []string
	for _, m := range []map[string]*found{a, b} {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	return keys
}

// fromRemote reports whether the Application (at head, else at base)
// deploys from one of the checkout's remotes.
func fromRemote(b, h *found, remotes []string) bool {
	for _, r := range remotes {
		if SameRepository(repoURLOf(b, h), r) {
			return true
		}
	}
	return false
}

func repoURLOf(b, h *found) string {
	if h != nil {
		return h.app.Spec.Source.RepoURL
	}
	return b.app.Spec.Source.RepoURL
}

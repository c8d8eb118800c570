package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/codify"
	"github.com/keyless-cd/keyless/internal/gitsource"
	"github.com/keyless-cd/keyless/internal/rollback"
)

// codifyFlags are keyless pause --codify's.
type codifyFlags struct {
	gitAuthFlags
	codify     bool
	push       bool
	newBranch  string
	author     string
	committer  string
	signSSHKey string
	retries    int
}

func (f *codifyFlags) addFlags(fl *pflag.FlagSet) {
	fl.BoolVar(&f.codify, "codify", false, "write the drift recorded during the pause in force into the Application's manifests in Git (a commit authored by you) instead of pausing")
	fl.BoolVar(&f.push, "push", false, "with --codify: push the commit (default: show it, push nothing)")
	fl.StringVar(&f.newBranch, "new-branch", "", "with --codify: push the commit as this new branch, for a pull/merge request, instead of to the Application's branch")
	fl.StringVar(&f.author, "author", "", `with --codify: author, "Name <email>" (default GIT_AUTHOR_NAME/EMAIL, the CI user, git's user.name/email)`)
	fl.StringVar(&f.committer, "committer", "", `with --codify: committer, "Name <email>" (default the author)`)
	fl.StringVar(&f.signSSHKey, "sign-ssh-key", "", "with --codify: sign the commit with this SSH private key (for an Application in verify mode)")
	fl.IntVar(&f.retries, "retries", 10, "with --codify: retries of a push rejected because the branch moved")
	f.gitAuthFlags.addFlags(fl)
	f.addCloneFlags(fl)
}

// runCodify writes the pause's drift into Git.
func runCodify(cmd *cobra.Command, streams IOStreams, f *pauseFlags, name string) error {
	ctx := cmd.Context()
	app, err := getApp(cmd, &f.kubeFlags, name)
	if err != nil {
		return err
	}
	if err := rollsBackThroughGit(app); err != nil {
		return fmt.Errorf("--codify: %w", err)
	}
	p := app.Status.Pause
	switch {
	case p == nil:
		return fmt.Errorf("application %s/%s is not paused: --codify writes the drift of a pause in force (keyless pause %s --for … --reason … first)", app.Namespace, name, name)
	case len(p.Drift) == 0:
		return fmt.Errorf("application %s/%s has no drift recorded yet (status.pause.drift): the controller records it at its next check", app.Namespace, name)
	}
	drifted := codify.ParseDrift(p.Drift)
	c, err := f.appClient()
	if err != nil {
		return err
	}
	opts, err := f.codify.options(ctx, streams, c, app)
	if err != nil {
		return err
	}
	live := liveReader(ctx, c, app.Namespace)
	var res *codify.Result
	base := opts.Paths[0]
	opts.Edit = func(files map[string][]byte) (map[string][]byte, error) {
		var err error
		res, err = codify.Edit(files, drifted, live)
		if err != nil {
			return nil, err
		}
		return res.Files, nil
	}
	opts.Message = func() string { return codifyMessage(app, p, res) }
	_, _ = fmt.Fprintf(streams.ErrOut, "cloning %s ...\n", gitsource.Redact(opts.RepoURL))
	plan, err := rollback.Prepare(ctx, opts)
	if res != nil {
		for _, s := range res.Skipped {
			_, _ = fmt.Fprintf(streams.ErrOut, "not written back: %s\n", s)
		}
	}
	if err != nil {
		return err
	}
	defer plan.Close()
	w := streams.Out
	if f.codify.push {
		w = streams.ErrOut
	}
	for _, ch := range res.Changes {
		_, _ = fmt.Fprintf(w, "%s %s %s: %s -> %s\n", ch.File, ch.Object, ch.Path, ch.Old, ch.New)
	}
	if plan.Commit == "" {
		_, _ = fmt.Fprintf(streams.ErrOut, "%s already holds the live values under %s: nothing to commit\n", plan.Branch, base)
		return nil
	}
	if !f.codify.push {
		_, _ = fmt.Fprintf(streams.ErrOut, "dry run: the codify commit on %s (%s) was not pushed; pass --push to push it\n", plan.Branch, kv1.ShortSHA(plan.Tip))
		return nil
	}
	if err := plan.Push(ctx); err != nil {
		return err
	}
	if f.codify.newBranch != "" {
		_, _ = fmt.Fprintf(streams.ErrOut, "pushed the codify commit as branch %s: open a pull/merge request from it into %s\n", f.codify.newBranch, plan.Branch)
	} else {
		_, _ = fmt.Fprintf(streams.ErrOut, "pushed the codify commit to %s; once synced, the hand-made change is what Git says\n", plan.Branch)
	}
	_, _ = fmt.Fprintln(streams.Out, plan.Commit)
	return nil
}

// options fill rollback.Options for a codify commit (Edit and Message are
// the caller's).
func (f *codifyFlags) options(ctx context.Context, streams IOStreams, c client.Client, app *kv1.Application) (rollback.Options, error) {
	src := app.Spec.Source
	branch := ""
	if src.TargetRevision != "HEAD" {
		branch = src.TargetRevision
	}
	if fullSHA.MatchString(branch) {
		return rollback.Options{}, fmt.Errorf("the Application %s/%s pins commit %s (spec.source.targetRevision): there is no branch to codify on", app.Namespace, app.Name, branch)
	}
	paths, err := rollback.PathsOf(app)
	if err != nil {
		return rollback.Options{}, err
	}
	author, trailers, err := rollbackAuthor(f.author, streams.getenv)
	if err != nil {
		return rollback.Options{}, errors.New(strings.Replace(err.Error(), "rolling back", "codifying", 1))
	}
	opts := rollback.Options{RepoURL: src.RepoURL, Branch: branch, Paths: paths[:1], Application: app.Namespace + "/" + app.Name,
		Author: author, Trailers: trailers, Retries: f.retries, Limits: f.cloneLimits(), PushTo: f.newBranch}
	return opts, f.commitIdentity(ctx, streams, c, app, f.committer, f.signSSHKey, &opts)
}

// liveReader reads objects of namespace with the person's own rights,
// each once.
func liveReader(ctx context.Context, c client.Client, namespace string) codify.Live {
	seen := map[string]map[string]any{}
	return func(apiVersion, kind, name string) (map[string]any, error) {
		key := apiVersion + "/" + kind + "/" + name
		if obj, ok := seen[key]; ok {
			return obj, nil
		}
		gv, err := schema.ParseGroupVersion(apiVersion)
		if err != nil {
			return nil, fmt.Errorf("apiVersion %q: %w", apiVersion, err)
		}
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gv.WithKind(kind))
		switch err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, u); {
		case apierrors.IsNotFound(err):
			seen[key] = nil
		case err != nil:
			return nil, err
		default:
			seen[key] = u.Object
		}
		return seen[key], nil
	}
}

// codifyMessage is the codify commit's message: what, whose pause, why.
func codifyMessage(app *kv1.Application, p *kv1.PauseStatus, res *codify.Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Codify the drift of %s/%s made during %s's pause (%s)\n\n", app.Namespace, app.Name, p.By, firstLine(p.Reason, 100))
	fmt.Fprintf(&b, "What was changed by hand in the cluster while self-heal was paused, written into Git.\n\n")
	if res != nil {
		for _, ch := range res.Changes {
			fmt.Fprintf(&b, "- %s %s: %s -> %s (%s)\n", ch.Object, ch.Path, ch.Old, ch.New, ch.File)
		}
	}
	return b.String()
}

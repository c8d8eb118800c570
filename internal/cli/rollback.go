package cli

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/bump"
	"github.com/keyless-cd/keyless/internal/gitsource"
	"github.com/keyless-cd/keyless/internal/preview"
	"github.com/keyless-cd/keyless/internal/renderproc"
	"github.com/keyless-cd/keyless/internal/rollback"
)

type rollbackFlags struct {
	kubeFlags
	gitAuthFlags
	to         string
	push       bool
	dryRun     bool
	branch     string
	author     string
	committer  string
	signSSHKey string
	retries    int
	limits     renderLimitFlags
}

func newRollbackCommand(streams IOStreams) *cobra.Command {
	f := &rollbackFlags{}
	cmd := &cobra.Command{
		Use:   "rollback APP -n NAMESPACE --to REV [--push]",
		Short: "Roll an Application back through Git: a commit restoring its path to an earlier revision",
		Long: `Read the Application from the cluster, clone its branch, and make a commit on the
branch's tip that restores the Application's path (and the Helm value files it
names outside it) to their content at REV — a revert, so Git stays the source of
truth, the controller deploys the rollback like any commit, and the history and
audit trail hold it. Nothing else in the repository changes. REV must be in the
branch's history (keyless history APP lists the revisions deployed).

The diff of what the rollback deploys is printed first, rendered as keyless
preview does. Without --push (or with --dry-run) nothing is pushed. With --push,
a push rejected because the branch moved is retried on the new tip as bump does.

The commit is authored by the person running it: --author, else
GIT_AUTHOR_NAME/GIT_AUTHOR_EMAIL, else the CI platform's user (GitLab, GitHub),
else git's user.name/user.email. The Git credential is --token-env or --ssh-key,
else the Application's own (spec.source.secretRef, read with your kubeconfig) —
used only as the controller would use it: labelled keyless.dev/credential=git,
bound to the repoURL's host by keyless.dev/git-host, never over plain http://
(--allow-insecure-http for loopback tests). The clone is bounded (--git-timeout,
512 MiB).
With verify mode on, sign the commit (--sign-ssh-key) with a key the Application
trusts.`,
		Example: `  # What would rolling back to a revision deploy?
  keyless rollback web -n team-a --to 1a2b3c4d --dry-run

  # Roll back and push, with a deploy key
  keyless rollback web -n team-a --to 1a2b3c4d --push --ssh-key deploy_key --known-hosts known_hosts`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRollback(cmd, streams, f, args[0])
		},
	}
	fl := cmd.Flags()
	f.kubeFlags.addFlags(fl)
	f.gitAuthFlags.addFlags(fl)
	f.addCloneFlags(fl)
	fl.StringVar(&f.to, "to", "", "revision to restore: a commit SHA (full or abbreviated) in the branch's history (required)")
	fl.BoolVar(&f.push, "push", false, "push the rollback commit")
	fl.BoolVar(&f.dryRun, "dry-run", false, "show what the rollback would deploy; push nothing even with --push")
	fl.StringVar(&f.branch, "branch", "", "branch to commit to (default the Application's spec.source.targetRevision, else the remote's default)")
	fl.StringVar(&f.author, "author", "", `author, "Name <email>" (default GIT_AUTHOR_NAME/EMAIL, the CI user, git's user.name/email)`)
	fl.StringVar(&f.committer, "committer", "", `committer, "Name <email>" (default the author)`)
	fl.StringVar(&f.signSSHKey, "sign-ssh-key", "", "sign the commit with this SSH private key (for an Application in verify mode)")
	fl.IntVar(&f.retries, "retries", 10, "retries of a push rejected because the branch moved")
	f.limits.addFlags(fl)
	return cmd
}

// fullSHA matches a 40-hex commit SHA.
var fullSHA = regexp.MustCompile(`^[0-9a-f]{40}$`)

func runRollback(cmd *cobra.Command, streams IOStreams, f *rollbackFlags, name string) error {
	ctx := cmd.Context()
	if f.to == "" {
		return errors.New("--to is required: the revision to roll back to (keyless history " + name + " lists them)")
	}
	ns, err := f.targetNamespace()
	if err != nil {
		return err
	}
	c, err := f.appClient()
	if err != nil {
		return err
	}
	app := &kv1.Application{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, app); err != nil {
		return fmt.Errorf("reading Application %s/%s: %w", ns, name, err)
	}
	if err := rollsBackThroughGit(app); err != nil {
		return err
	}
	opts, err := f.options(ctx, streams, c, app)
	if err != nil {
		return err
	}
	_, _ = fmt.Fprintf(streams.ErrOut, "cloning %s ...\n", gitsource.Redact(opts.RepoURL))
	plan, err := rollback.Prepare(ctx, opts)
	if err != nil {
		return err
	}
	defer plan.Close()
	if plan.Commit == "" {
		_, _ = fmt.Fprintf(streams.ErrOut, "%s already holds %s's content at %s: nothing to roll back\n", plan.Branch, opts.Paths, kv1.ShortSHA(plan.To))
		return nil
	}
	if err := f.showDiff(ctx, streams, plan, app); err != nil {
		return err
	}
	if !f.push || f.dryRun {
		_, _ = fmt.Fprintf(streams.ErrOut, "dry run: rollback of %s to %s (%q) not pushed; pass --push to push it\n", opts.Application, kv1.ShortSHA(plan.To), plan.ToSubject)
		return nil
	}
	if err := plan.Push(ctx); err != nil {
		return err
	}
	if plan.Commit == "" {
		_, _ = fmt.Fprintf(streams.ErrOut, "%s reached %s's content meanwhile: nothing pushed\n", plan.Branch, kv1.ShortSHA(plan.To))
		return nil
	}
	if plan.Attempts > 1 {
		_, _ = fmt.Fprintf(streams.ErrOut, "pushed after %d attempts (the branch moved meanwhile)\n", plan.Attempts)
	}
	_, _ = fmt.Fprintf(streams.ErrOut, "pushed the rollback of %s to %s on %s; the controller deploys it on its next poll or webhook\n", opts.Application, kv1.ShortSHA(plan.To), plan.Branch)
	_, _ = fmt.Fprintln(streams.Out, plan.Commit)
	return nil
}

// options fill rollback.Options from the Application and the flags.
func (f *rollbackFlags) options(ctx context.Context, streams IOStreams, c client.Client, app *kv1.Application) (rollback.Options, error) {
	src := app.Spec.Source
	branch := f.branch
	if branch == "" && src.TargetRevision != "HEAD" {
		branch = src.TargetRevision
	}
	if fullSHA.MatchString(branch) {
		return rollback.Options{}, fmt.Errorf("the Application %s/%s pins commit %s (spec.source.targetRevision): there is no branch to roll back on; set targetRevision to %s instead", app.Namespace, app.Name, branch, f.to)
	}
	paths, err := rollback.PathsOf(app)
	if err != nil {
		return rollback.Options{}, err
	}
	author, trailers, err := rollbackAuthor(f.author, streams.getenv)
	if err != nil {
		return rollback.Options{}, err
	}
	opts := rollback.Options{
		RepoURL: src.RepoURL, Branch: branch, Paths: paths, To: f.to, Application: app.Namespace + "/" + app.Name,
		Author: author, Trailers: trailers, Retries: f.retries, Limits: f.cloneLimits(),
	}
	return opts, f.commitIdentity(ctx, streams, c, app, f.committer, f.signSSHKey, &opts)
}

// commitIdentity completes opts with the committer (--committer), the
// signer (--sign-ssh-key) and the Git credential, for the commands that
// commit to an Application's repository (rollback, pause --codify).
func (f *gitAuthFlags) commitIdentity(ctx context.Context, streams IOStreams, c client.Client, app *kv1.Application, committer, signKey string, opts *rollback.Options) error {
	if committer != "" {
		id, err := bump.ParseIdentity(committer)
		if err != nil {
			return fmt.Errorf("--committer %w", err)
		}
		opts.Committer = &id
	}
	var err error
	if opts.Signer, err = commitSigner(signKey); err != nil {
		return err
	}
	opts.Auth, err = f.credential(ctx, c, app, streams.getenv)
	return err
}

// rollbackAuthor is --author, else GIT_AUTHOR_NAME/EMAIL, else the CI
// platform's user (with its trailers), else git's user.name/user.email.
func rollbackAuthor(flag string, getenv func(string) string) (bump.Identity, []string, error) {
	ciAuthor, trailers := bump.FromCIEnv(getenv)
	switch {
	case flag != "":
		id, err := bump.ParseIdentity(flag)
		if err != nil {
			return bump.Identity{}, nil, fmt.Errorf("--author %w", err)
		}
		return id, trailers, nil
	case getenv("GIT_AUTHOR_EMAIL") != "":
		id := bump.Identity{Name: getenv("GIT_AUTHOR_NAME"), Email: getenv("GIT_AUTHOR_EMAIL")}
		if id.Name == "" {
			id.Name = id.Email
		}
		return id, trailers, nil
	case ciAuthor != nil:
		return *ciAuthor, trailers, nil
	}
	if cfg, err := gitconfig.LoadConfig(gitconfig.GlobalScope); err == nil && cfg.User.Email != "" {
		id := bump.Identity{Name: cfg.User.Name, Email: cfg.User.Email}
		if id.Name == "" {
			id.Name = id.Email
		}
		return id, trailers, nil
	}
	return bump.Identity{}, nil, errors.New(`who is rolling back? pass --author "Name <email>" or set GIT_AUTHOR_NAME and GIT_AUTHOR_EMAIL (or git's user.name and user.email)`)
}

// showDiff prints what the rollback deploys: the Application rendered at
// the branch's tip and at the rollback commit.
func (f *rollbackFlags) showDiff(ctx context.Context, streams IOStreams, plan *rollback.Plan, app *kv1.Application) error {
	runner, err := renderproc.New(f.limits.options())
	if err != nil {
		return err
	}
	rep, err := preview.Run(ctx, preview.Options{Dir: plan.Dir, Base: plan.Tip, Head: plan.Commit, Applications: []*kv1.Application{app}, Renderer: runner})
	if err != nil {
		return err
	}
	// The diff is the output of a dry run; a push prints the commit instead.
	w := streams.Out
	if f.push && !f.dryRun {
		w = streams.ErrOut
	}
	if err := preview.WriteReport(w, rep, preview.FormatText); err != nil {
		return err
	}
	return rep.Err()
}

// rollsBackThroughGit refuses an Application whose source is not one Git
// repository: a rollback is a commit to it.
func rollsBackThroughGit(app *kv1.Application) error {
	switch {
	case app.Spec.Source.Chart != "":
		return fmt.Errorf("application %s/%s deploys chart %s from %s, not a Git folder: roll back by setting spec.source.targetRevision to the version to run (keyless history lists them)",
			app.Namespace, app.Name, app.Spec.Source.Chart, gitsource.Redact(app.Spec.Source.RepoURL))
	case app.Spec.Source.IsArtifact():
		return fmt.Errorf("application %s/%s deploys the OCI artifact %s, not a Git folder: roll back by setting spec.source.targetRevision to the digest to run (keyless history lists them), or by moving its tag back (keyless bump --artifact)",
			app.Namespace, app.Name, gitsource.Redact(app.Spec.Source.RepoURL))
	case len(app.Spec.Sources) > 0:
		return fmt.Errorf("application %s/%s has several sources (spec.sources): roll back by reverting the commit of the values source, or by pinning the chart's targetRevision", app.Namespace, app.Name)
	}
	return nil
}

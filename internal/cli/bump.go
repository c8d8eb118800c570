package cli

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyless-cd/keyless/internal/bump"
	"github.com/keyless-cd/keyless/internal/publish"
)

type bumpFlags struct {
	file      string
	sets      []string
	images    []string
	dir       string
	repo      string
	branch    string
	commit    bool
	push      bool
	message   string
	committer string
	gitAuthFlags
	signSSHKey string
	retries    int
	timeout    time.Duration
	skipCI     bool
	output     string
	// artifact and tag: promote an OCI artifact instead of a Git edit.
	artifact, tag string
	registry      registryFlags
}

func newBumpCommand(streams IOStreams) *cobra.Command {
	f := &bumpFlags{}
	cmd := &cobra.Command{
		Use:   "bump (--file FILE (--set PATH=VALUE | --image NAME=REF)... [--commit] [--push] | --artifact oci://REF --tag TAG)",
		Short: "Change an image tag (or any value) in Git, byte-for-byte, and push it race-free",
		Long: `The CI step of the GitOps path: CI never touches the cluster, it commits the new
image tag and the controller deploys it.

Only the bytes of the changed values change: comments, blank lines, indentation,
quoting, key order, anchors, block scalars, CRLF line endings and other documents
are kept exactly. When every value already has its target, nothing is written and
no commit is made ("already up to date").

--set takes a dot path with [N] indices and "quoted.keys" (image.tag,
spec.template.spec.containers[0].image, metadata.labels."app.kubernetes.io/version").
--image NAME=REF sets a kustomization's images[] entry (newTag/newName/digest) or,
in workload manifests, every container and initContainer whose image is NAME.

With --push, a push rejected because another pipeline pushed first is retried: the
new tip is fetched and the same edit is applied to it (not a rebase of the old
commit), with exponential backoff and full jitter, until --timeout (5m).

The author is the person who triggered the pipeline (GitLab GITLAB_USER_NAME/EMAIL,
GitHub GITHUB_ACTOR), the committer is --committer, and trailers record the pipeline
(Pipeline: URL, Source-Commit: SHA). The credential is a Git one (a deploy key or a
token), never a cluster one.

With --artifact oci://REGISTRY/REPOSITORY:TAG (or @sha256:…) --tag TAG, the
artifact is what is promoted, not a commit: TAG is moved to the artifact's digest
in the registry (as 'flux tag artifact'), and Applications following TAG deploy
it. The artifact must be one (a Flux content layer); a signature stays valid, it
signs the digest. The registry login is as for keyless publish.`,
		Example: `  # GitLab CI: bump the Helm values of the seed and push with the job token
  keyless bump --file values/myapp.yml --set image.tag=$CI_COMMIT_SHORT_SHA \
    --push --token-env CI_JOB_TOKEN --committer "CI <ci@example.com>" --skip-ci

  # kustomize
  keyless bump --file k8s/kustomization.yaml \
    --image registry.example.com/myapp=registry.example.com/myapp:abc123 --push

  # another repository (the GitOps repo), with a deploy key
  keyless bump --repo git@gitlab.example.com:myorg/deploy.git --file apps/myapp/values.yml \
    --set image.tag=abc123 --push --ssh-key ~/.ssh/deploy_key --known-hosts known_hosts

  # promote a published artifact: production now names what staging ran
  keyless bump --artifact oci://registry.example.com/myapp/manifests:staging --tag production`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBump(cmd, streams, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.file, "file", "", "YAML file to edit, relative to --dir or the repository (required)")
	fl.StringArrayVar(&f.sets, "set", nil, "PATH=VALUE to set (repeatable)")
	fl.StringArrayVar(&f.images, "image", nil, "NAME=REF image to set, e.g. registry.example.com/app=registry.example.com/app:abc123 (repeatable)")
	fl.StringVar(&f.dir, "dir", ".", "the Git checkout to edit")
	fl.StringVar(&f.repo, "repo", "", "clone this repository (shallow, into a temp dir) instead of using --dir")
	fl.StringVar(&f.branch, "branch", "", "branch to commit to and push (default the current branch, or the remote's default)")
	fl.BoolVar(&f.commit, "commit", false, "commit the change")
	fl.BoolVar(&f.push, "push", false, "commit and push the change")
	fl.StringVar(&f.message, "message", "", "commit message, a Go template over .File and .Changes (.Path .Old .New); default \""+bump.DefaultMessage+"\"")
	fl.StringVar(&f.committer, "committer", "keyless bump <keyless-bump@users.noreply.invalid>", `committer, "Name <email>" (the CI bot)`)
	f.addFlags(fl)
	// The names before the ship issue; kept so existing pipelines run.
	fl.StringVar(&f.sshKeyFile, "ssh-key-file", "", "")
	fl.StringVar(&f.knownHostsFile, "known-hosts-file", "", "")
	_ = fl.MarkDeprecated("ssh-key-file", "use --ssh-key")
	_ = fl.MarkDeprecated("known-hosts-file", "use --known-hosts")
	fl.StringVar(&f.signSSHKey, "sign-ssh-key", "", "sign the commit with this SSH private key (accepted by the controller's verify mode)")
	fl.DurationVar(&f.timeout, "timeout", bump.DefaultTimeout, "how long a push rejected because the branch moved is retried (exponential backoff, full jitter)")
	fl.IntVar(&f.retries, "retries", 0, "also stop after this many retries of a rejected push (0: until --timeout)")
	fl.BoolVar(&f.skipCI, "skip-ci", false, `append "[skip ci]" to the subject so the push does not start another pipeline`)
	fl.StringVarP(&f.output, "output", "o", "text", "output format: text (the commit SHA on stdout) or json")
	fl.StringVar(&f.artifact, "artifact", "", "promote this OCI artifact (oci://registry/repository:tag or @sha256:…) instead of editing Git")
	fl.StringVar(&f.tag, "tag", "", "with --artifact: the tag to point at it (e.g. production)")
	f.registry.addFlags(fl)
	return cmd
}

func runBump(cmd *cobra.Command, streams IOStreams, f *bumpFlags) error {
	if err := checkOutput(f.output); err != nil {
		return err
	}
	if f.artifact != "" || f.tag != "" {
		return runBumpArtifact(cmd, streams, f)
	}
	if f.file == "" {
		return errors.New("--file is required")
	}
	if len(f.sets) == 0 && len(f.images) == 0 {
		return errors.New("nothing to change: give --set PATH=VALUE or --image NAME=REF")
	}
	req := bump.Request{File: f.file}
	for _, s := range f.sets {
		v, err := bump.ParseSet(s)
		if err != nil {
			return err
		}
		req.Sets = append(req.Sets, v)
	}
	for _, s := range f.images {
		img, err := bump.ParseImage(s)
		if err != nil {
			return err
		}
		req.Images = append(req.Images, img)
	}
	committer, err := bump.ParseIdentity(f.committer)
	if err != nil {
		return fmt.Errorf("--committer %w", err)
	}
	author, trailers := bump.FromCIEnv(streams.getenv)
	opts := bump.Options{
		Dir: f.dir, RepoURL: f.repo, Branch: f.branch, Commit: f.commit, Push: f.push, Message: f.message,
		Committer: committer, Author: author, Trailers: trailers, SkipCI: f.skipCI, Timeout: f.timeout, Retries: f.retries,
	}
	if opts.Auth, err = f.auth(streams.getenv); err != nil {
		return err
	}
	if opts.Signer, err = commitSigner(f.signSSHKey); err != nil {
		return err
	}
	res, err := bump.Run(cmd.Context(), req, opts)
	if err != nil {
		return err
	}
	if f.output == "json" {
		return writeJSON(streams.Out, res)
	}
	for _, c := range res.Changes {
		if c.Old == c.New {
			_, _ = fmt.Fprintf(streams.ErrOut, "%s: %s is already %s\n", res.File, c.Path, c.New)
		} else {
			_, _ = fmt.Fprintf(streams.ErrOut, "%s: %s %s → %s\n", res.File, c.Path, c.Old, c.New)
		}
	}
	switch {
	case res.UpToDate:
		_, _ = fmt.Fprintln(streams.ErrOut, "already up to date: nothing written, no commit")
	case res.Commit != "":
		if res.Attempts > 1 {
			_, _ = fmt.Fprintf(streams.ErrOut, "pushed after %d attempts (the branch moved meanwhile)\n", res.Attempts)
		}
		_, _ = fmt.Fprintln(streams.Out, res.Commit)
	}
	return nil
}

// runBumpArtifact moves --tag to the --artifact's digest.
func runBumpArtifact(cmd *cobra.Command, streams IOStreams, f *bumpFlags) error {
	switch {
	case f.artifact == "" || f.tag == "":
		return errors.New("--artifact and --tag go together: the artifact to promote and the tag to point at it")
	case f.file != "" || len(f.sets) > 0 || len(f.images) > 0 || f.commit || f.push:
		return errors.New("--artifact promotes in the registry, without a Git edit: leave out --file, --set, --image, --commit and --push")
	}
	from, err := publish.ParseRef(f.artifact)
	if err != nil {
		return err
	}
	reg, err := f.registry.options(streams, from)
	if err != nil {
		return err
	}
	p, err := publish.Promote(cmd.Context(), from, f.tag, reg)
	if err != nil {
		return err
	}
	if f.output == "json" {
		return writeJSON(streams.Out, p)
	}
	switch p.Previous {
	case p.From.Digest:
		_, _ = fmt.Fprintf(streams.ErrOut, "%s already names %s: nothing changed\n", p.Tag, p.From.Digest)
	case "":
		_, _ = fmt.Fprintf(streams.ErrOut, "%s: new tag → %s\n", p.Tag, p.From.Digest)
	default:
		_, _ = fmt.Fprintf(streams.ErrOut, "%s: %s → %s\n", p.Tag, p.Previous, p.From.Digest)
	}
	_, _ = fmt.Fprintln(streams.Out, p.URL)
	return nil
}

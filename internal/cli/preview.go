package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keyless-cd/keyless/internal/controller"
	"github.com/keyless-cd/keyless/internal/preview"
	"github.com/keyless-cd/keyless/internal/renderproc"
	"github.com/keyless-cd/keyless/internal/version"
)

type previewFlags struct {
	base        string
	head        string
	repo        string
	format      string
	kubeVersion string
	apiVersions []string
	limits      renderLimitFlags
}

func newPreviewCommand(streams IOStreams) *cobra.Command {
	f := &previewFlags{}
	cmd := &cobra.Command{
		Use:   "preview --base REV [--head REV] [APPLICATION_FILES...]",
		Short: "Show what a change deploys: each Application rendered at two revisions and compared (no cluster access)",
		Long: `Render each Application of the Git checkout at --base and at --head exactly as
the controller would (same renderer, Helm values and options, same limits, in a
bounded child process) and print, per Application, the objects the change adds,
changes and removes, with a unified diff of each (Secret values masked: a
changed value shows as "*** (changed)"). Hook phases and sync waves are shown
beside the objects that have them.

Applications are keyless Applications (keyless.dev/v1alpha1) and Argo CD
Applications (argoproj.io/v1alpha1), found in every YAML or JSON file of the
repository at either revision whose spec.source.repoURL is one of the
checkout's remotes — or taken from APPLICATION_FILES, which are then previewed
against this checkout whatever their repoURL. Both revisions are read from Git,
not from the working tree; a shallow clone must hold the base commit.

No cluster is contacted and no credential is needed: run it in the merge
request's pipeline. --format markdown writes a comment-sized summary with
collapsible per-object diffs (for a merge-request note or
$GITHUB_STEP_SUMMARY), --format json the whole report for tools.

An Application's spec.healthCheckExprs at --head is compiled as the controller
compiles it: an entry that does not compile is reported, naming the manifest's
file and line and the entry, so it fails the merge request rather than the sync.

Exit status: 0 no change, 1 changes, 2 error — including an Application that
does not render at --head (the report names the file and line) or whose health
check expressions do not compile.`,
		Example: `  # What does this branch change, compared with main?
  keyless preview --base origin/main

  # In a GitLab merge-request pipeline (GIT_DEPTH: 0)
  keyless preview --base "$CI_MERGE_REQUEST_DIFF_BASE_SHA" --format markdown > preview.md

  # In a GitHub pull-request workflow (fetch-depth: 0)
  keyless preview --base "origin/$GITHUB_BASE_REF" --format markdown >> "$GITHUB_STEP_SUMMARY"

  # One Application, whatever its repoURL
  keyless preview --base HEAD~1 apps/web.yaml`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return errorExits2(runPreview(cmd, streams, f, args))
		},
	}
	cmd.Flags().StringVar(&f.base, "base", "", "revision to compare with: the merge request's target branch or merge base (required)")
	cmd.Flags().StringVar(&f.head, "head", "HEAD", "revision under review")
	cmd.Flags().StringVar(&f.repo, "repo", ".", "folder inside the Git checkout")
	cmd.Flags().StringVar(&f.format, "format", preview.FormatText, "output format: "+strings.Join(preview.Formats, ", "))
	cmd.Flags().StringVar(&f.kubeVersion, "kube-version", "", "Kubernetes version for Helm's .Capabilities.KubeVersion, as helm template --kube-version (default "+version.KubernetesVersion()+"; an Application's helm.kubeVersion wins)")
	cmd.Flags().StringSliceVarP(&f.apiVersions, "api-versions", "a", nil, "API versions for Helm's .Capabilities.APIVersions, as helm template --api-versions, e.g. monitoring.coreos.com/v1 (repeatable; the controller uses the cluster's)")
	f.limits.addFlags(cmd.Flags())
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions(preview.Formats, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func runPreview(cmd *cobra.Command, streams IOStreams, f *previewFlags, files []string) error {
	if err := checkFormat(f.format); err != nil {
		return err
	}
	runner, err := renderproc.New(f.limits.options())
	if err != nil {
		return err
	}
	rep, err := preview.Run(cmd.Context(), preview.Options{Dir: f.repo, Base: f.base, Head: f.head, Files: files, Renderer: runner,
		Capabilities: controller.Capabilities{KubeVersion: f.kubeVersion, APIVersions: f.apiVersions}})
	if err != nil {
		return err
	}
	if err := preview.WriteReport(streams.Out, rep, f.format); err != nil {
		return err
	}
	if err := rep.Err(); err != nil {
		return &ExitError{Code: 2, Err: err}
	}
	if rep.Changed() {
		return &ExitError{Code: 1}
	}
	return nil
}

func checkFormat(format string) error {
	for _, f := range preview.Formats {
		if f == format {
			return nil
		}
	}
	return fmt.Errorf("--format %q: want one of %s", format, strings.Join(preview.Formats, ", "))
}

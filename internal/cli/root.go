package cli

import (
	"github.com/spf13/cobra"

	"github.com/keyless-cd/keyless/internal/version"
)

// NewRootCommand builds the keyless command tree.
func NewRootCommand(streams IOStreams) *cobra.Command {
	root := &cobra.Command{
		Use:   "keyless",
		Short: "Deliver software to Kubernetes without storing a cluster credential anywhere",
		Long: `keyless delivers applications from Git to Kubernetes with no cluster credential
stored outside the cluster.

  Pull (GitOps): CI commits a new image tag; the in-cluster controller applies it
                 into the Application's own namespace, with namespaced Roles only.
  Push (OIDC):   a CI job deploys with the short-lived JWT its platform issues;
                 the apiserver trusts the issuer and RBAC grants one pipeline a small Role.`,
		// keyless --version prints what keyless version's first line does.
		Version: version.Version(),
	}
	root.SetVersionTemplate("keyless {{.Version}}\n")
	WireRoot(root, streams)
	root.AddCommand(
		newVersionCommand(streams),
		newCheckCommand(streams),
		newRenderCommand(streams),
		newDiffCommand(streams),
		newPreviewCommand(streams),
		newApplyCommand(streams),
		newControllerCommand(streams),
		newGetCommand(streams),
		newSyncCommand(streams),
		newApproveCommand(streams),
		newApprovalsCommand(streams),
		newPauseCommand(streams),
		newEvidenceCommand(streams),
		newHistoryCommand(streams),
		newRollbackCommand(streams),
		newImportCommand(streams),
		newBumpCommand(streams),
		newPublishCommand(streams),
		newOIDCCommand(streams),
		newDeployCommand(streams),
		newKubeconfigCommand(streams),
		newAuditCommand(streams),
		newSecretCommand(streams),
		newInstallCommand(streams),
		newUninstallCommand(streams),
		newUICommand(streams),
	)
	registerCompletions(root)
	return root
}

// WireRoot makes cmd a root command on streams: its output goes to them, and
// errors are printed once, by Execute, without the usage text.
func WireRoot(cmd *cobra.Command, streams IOStreams) {
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetIn(streams.In)
	cmd.SetOut(streams.Out)
	cmd.SetErr(streams.ErrOut)
}

package cli

import (
	"github.com/spf13/cobra"
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
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	root.AddCommand(
		newVersionCommand(streams),
		newLocalclusterCommand(streams),
		newRenderCommand(streams),
		newDiffCommand(streams),
		newApplyCommand(streams),
		newControllerCommand(streams),
		newGetCommand(streams),
		newSyncCommand(streams),
		newHistoryCommand(streams),
		newImportCommand(streams),
		newBumpCommand(streams),
		newOIDCCommand(streams),
		newDeployCommand(streams),
		newKubeconfigCommand(streams),
		newDevIssuerCommand(streams),
		newAuditCommand(streams),
		newDemoCommand(streams),
	)
	return root
}

package cli

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

type historyFlags struct {
	kubeFlags
	gitAuthFlags
	output  string
	changes bool
	limits  renderLimitFlags
}

func newHistoryCommand(streams IOStreams) *cobra.Command {
	f := &historyFlags{}
	cmd := &cobra.Command{
		Use:   "history APP -n NAMESPACE",
		Short: "Show who deployed what: the last 10 syncs of an Application",
		Long: `Print an Application's sync history, newest first: the commit, its author and
committer, the key that signed it (with verify on), what triggered the sync, when it
finished, the result and what changed. The same records are Kubernetes Events and
JSON lines on the controller's stdout.

The ROLLBACK column says which revisions ` + "`keyless rollback --to`" + ` can return to: "current"
is what runs now, "target" a revision that synced successfully before, "-" one that
failed. With --changes, keyless clones the Application's branch (with the Application's
Git Secret, read as you, or --token-env/--ssh-key) and renders each target as the
controller would, to show what a rollback to it would change against what runs now.
The Application's Secret is sent only where the controller would send it (labelled
keyless.dev/credential=git, bound to the repoURL's host, never over plain http://
without --allow-insecure-http), and the clone is bounded (--git-timeout, 512 MiB).
No cluster write is made.`,
		Example: `  keyless history web -n myapp
  keyless history web -n myapp --changes
  keyless history web -n myapp -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runHistory(cmd, streams, f, args[0])
		},
	}
	f.kubeFlags.addFlags(cmd.Flags())
	f.gitAuthFlags.addFlags(cmd.Flags())
	f.addCloneFlags(cmd.Flags())
	f.limits.addFlags(cmd.Flags())
	cmd.Flags().StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	cmd.Flags().BoolVar(&f.changes, "changes", false, "render each rollback target and show what a rollback to it would change (clones the repository)")
	return cmd
}

func runHistory(cmd *cobra.Command, streams IOStreams, f *historyFlags, name string) error {
	if err := checkOutput(f.output); err != nil {
		return err
	}
	app, err := getApp(cmd, &f.kubeFlags, name)
	if err != nil {
		return err
	}
	if f.output == "json" {
		return writeJSON(streams.Out, app.Status.History)
	}
	if len(app.Status.History) == 0 {
		_, err := fmt.Fprintf(streams.ErrOut, "Application %s/%s has not synced yet.\n", app.Namespace, app.Name)
		return err
	}
	var would map[string]string
	if f.changes {
		if would, err = f.rollbackChanges(cmd, streams, app); err != nil {
			return err
		}
	}
	w := tabwriter.NewWriter(streams.Out, 0, 4, 2, ' ', 0)
	header := "REVISION\tRESULT\tROLLBACK\tTRIGGER\tAUTHOR\tCOMMITTER\tSIGNER\tFINISHED\tCHANGES\tMESSAGE"
	approvals := app.ApprovesOutOfNamespace() || slices.ContainsFunc(app.Status.History, func(h kv1.SyncRecord) bool { return h.ApprovedBy != "" })
	if approvals {
		header += "\tAPPROVED BY\tAPPROVAL"
	}
	// Approvers at the forge (spec.source.verify.approvals).
	forgeApprovals := (app.Spec.Source.Verify != nil && app.Spec.Source.Verify.Approvals != nil) ||
		slices.ContainsFunc(app.Status.History, func(h kv1.SyncRecord) bool { return len(h.Approvers) > 0 })
	if forgeApprovals {
		header += "\tAPPROVERS"
	}
	if f.changes {
		header += "\tROLLBACK WOULD"
	}
	_, _ = fmt.Fprintln(w, header)
	for _, h := range app.Status.History {
		changes := h.Changes
		if h.Error != "" {
			changes = h.Error
		}
		_, _ = fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s", kv1.ShortSHA(h.Revision), h.Result, rollbackRole(app, h), h.Trigger, h.Author, h.Committer,
			orDash(h.Signer), h.FinishedAt.UTC().Format("2006-01-02 15:04:05Z"), firstLine(changes, 80), firstLine(h.Message, 60))
		if approvals {
			_, _ = fmt.Fprintf(w, "\t%s\t%s", orDash(h.ApprovedBy), orDash(shortDigest(h.ApprovalDigest)))
		}
		if forgeApprovals {
			_, _ = fmt.Fprintf(w, "\t%s", orDash(strings.Join(h.Approvers, ",")))
		}
		if f.changes {
			_, _ = fmt.Fprintf(w, "\t%s", orDash(would[h.Revision]))
		}
		_, _ = fmt.Fprintln(w)
	}
	return w.Flush()
}

func getApp(cmd *cobra.Command, kf *kubeFlags, name string) (*kv1.Application, error) {
	ns, err := kf.targetNamespace()
	if err != nil {
		return nil, err
	}
	c, err := kf.appClient()
	if err != nil {
		return nil, err
	}
	app := &kv1.Application{}
	if err := c.Get(cmd.Context(), client.ObjectKey{Namespace: ns, Name: name}, app); err != nil {
		return nil, fmt.Errorf("getting Application %s/%s: %w", ns, name, err)
	}
	return app, nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func firstLine(s string, n int) string {
	for i, r := range s {
		if r == '\n' {
			s = s[:i]
			break
		}
	}
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}

// shortDigest shortens "sha256:<hex>" to its first 12 hex digits, as
// keyless approve's record is named in tables.
func shortDigest(d string) string {
	if hex, ok := strings.CutPrefix(d, "sha256:"); ok && len(hex) > 12 {
		return "sha256:" + hex[:12]
	}
	return d
}

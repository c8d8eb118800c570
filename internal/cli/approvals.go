package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

type approvalsFlags struct {
	kubeFlags
	allNamespaces bool
	output        string
}

func newApprovalsCommand(streams IOStreams) *cobra.Command {
	f := &approvalsFlags{}
	cmd := &cobra.Command{
		Use:   "approvals [-n NAMESPACE | -A]",
		Short: "List the Applications whose out-of-namespace objects wait for approval",
		Long: `List the Applications (spec.syncPolicy.outOfNamespace: approve) holding a revision
whose CRDs, cluster-scoped objects or objects of other namespaces wait for a person's
approval: the revision, its author (who may not approve it, with four eyes on), how
many objects were added, changed and removed since the last approval, and since when.
Approve one with keyless approve APP -n NAMESPACE.`,
		Example: `  # what waits in every namespace you can read
  keyless approvals -A

  # as JSON, for a dashboard or a reminder job
  keyless approvals -A -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runApprovals(cmd, streams, f)
		},
	}
	f.addFlags(cmd.Flags())
	cmd.Flags().BoolVarP(&f.allNamespaces, "all-namespaces", "A", false, "list in every namespace you can read")
	cmd.Flags().StringVarP(&f.output, "output", "o", "text", "output format: text (a table) or json")
	return cmd
}

// pendingApproval is one line of keyless approvals (and its JSON item).
type pendingApproval struct {
	Namespace   string    `json:"namespace"`
	Application string    `json:"application"`
	Revision    string    `json:"revision"`
	Digest      string    `json:"digest"`
	Author      string    `json:"author,omitempty"`
	SelfAllowed bool      `json:"selfApprovalAllowed"`
	Objects     int       `json:"objects"`
	Added       []string  `json:"added,omitempty"`
	Changed     []string  `json:"changed,omitempty"`
	Removed     []string  `json:"removed,omitempty"`
	Since       time.Time `json:"since"`
}

func runApprovals(cmd *cobra.Command, streams IOStreams, f *approvalsFlags) error {
	if f.output != "text" && f.output != "json" {
		return fmt.Errorf("--output %q: write text (a table, the default) or json", f.output)
	}
	c, err := f.appClient()
	if err != nil {
		return err
	}
	var opts []client.ListOption
	if !f.allNamespaces {
		ns, err := f.targetNamespace()
		if err != nil {
			return fmt.Errorf("%w (or -A for all namespaces)", err)
		}
		opts = append(opts, client.InNamespace(ns))
	}
	list := &kv1.ApplicationList{}
	if err := c.List(cmd.Context(), list, opts...); err != nil {
		return fmt.Errorf("listing Applications: %w", err)
	}
	items := pendingApprovals(list.Items)
	if f.output == "json" {
		enc := json.NewEncoder(streams.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(items)
	}
	if len(items) == 0 {
		_, _ = fmt.Fprintln(streams.ErrOut, "Nothing waits for approval.")
		return nil
	}
	return printApprovals(streams.Out, items, time.Now())
}

// pendingApprovals are the apps that wait, oldest first.
func pendingApprovals(apps []kv1.Application) []pendingApproval {
	out := []pendingApproval{}
	for _, a := range apps {
		st := a.Status.Approval
		if st == nil || st.Pending == nil {
			continue
		}
		p := st.Pending
		out = append(out, pendingApproval{Namespace: a.Namespace, Application: a.Name, Revision: p.Revision, Digest: p.Digest,
			Author: p.Author, SelfAllowed: a.AllowsSelfApproval(), Objects: len(p.Objects), Added: p.Added, Changed: p.Changed, Removed: p.Removed,
			Since: p.Since.Time})
	}
	slices.SortStableFunc(out, func(a, b pendingApproval) int { return a.Since.Compare(b.Since) })
	return out
}

func printApprovals(out io.Writer, items []pendingApproval, now time.Time) error {
	w := tabwriter.NewWriter(out, 0, 4, 3, ' ', 0)
	_, _ = fmt.Fprintln(w, "NAMESPACE\tAPPLICATION\tREVISION\tAUTHOR\tAPPROVER\tOBJECTS\tCHANGES\tWAITING")
	for _, it := range items {
		approverText := "a cluster admin other than the author"
		if it.SelfAllowed || it.Author == "" {
			approverText = "a cluster admin"
		}
		_, _ = fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t+%d ~%d -%d\t%s\n", it.Namespace, it.Application, kv1.ShortSHA(it.Revision), orDash(it.Author),
			approverText, it.Objects, len(it.Added), len(it.Changed), len(it.Removed), duration.HumanDuration(now.Sub(it.Since)))
	}
	return w.Flush()
}

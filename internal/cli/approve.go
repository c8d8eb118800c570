package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/approver"
)

type approveFlags struct {
	kubeFlags
	yes                 bool
	controllerNamespace string
	timeout             time.Duration
	noWait              bool
}

// errNotApproved: the person answered no at the prompt.
var errNotApproved = errors.New("not approved: nothing applied")

func newApproveCommand(streams IOStreams) *cobra.Command {
	f := &approveFlags{}
	cmd := &cobra.Command{
		Use:   "approve APP -n NAMESPACE",
		Short: "Apply an Application's out-of-namespace objects as yourself and approve its revision",
		Long: `An Application with spec.syncPolicy.outOfNamespace: approve holds each revision whose
CRDs, cluster-scoped objects or objects of other namespaces changed (AwaitingApproval);
the last approved state keeps running. keyless approve is how a person lets it go on,
with their own kubeconfig: the API server, not keyless, decides whether you may write
those objects.

It shows the objects waiting (added, changed, and removed since the last approval) and
what applying them would change in the cluster (a server-side dry run as you), asks
for confirmation (--yes for scripts), applies them with server-side apply as you (field
manager keyless-approve; CRDs first, waiting until they are Established), deletes the
objects the last approval applied that the render no longer holds, and records the
approval (you, as the API server names you, the time, the revision and the objects'
digest) in the controller's namespace. The controller then syncs the namespaced part
as the Application's deployer; approve waits for that sync (--async not to).

Four eyes: you may not approve a revision you wrote (its commit's author), unless the
Application sets spec.syncPolicy.approval.allowSelfApproval; such an approval is
recorded as self-approved. keyless approvals lists what waits.`,
		Example: `  # review, confirm, apply, and wait for the controller's sync
  keyless approve cert-manager -n platform

  # in a script (after review elsewhere): no prompt
  keyless approve cert-manager -n platform --yes

  # a controller installed in another namespace than keyless-system
  keyless approve cert-manager -n platform --controller-namespace keyless`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runApprove(cmd, streams, f, args[0])
		},
	}
	f.addFlags(cmd.Flags())
	cmd.Flags().BoolVarP(&f.yes, "yes", "y", false, "approve without asking (after reviewing the objects elsewhere)")
	cmd.Flags().StringVar(&f.controllerNamespace, "controller-namespace", approver.DefaultControllerNamespace, "the controller's namespace, which holds the pending objects and the approval records")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 2*time.Minute, "how long to wait for new CRDs to be Established, then for the controller's sync")
	cmd.Flags().BoolVar(&f.noWait, "async", false, "record the approval and return without waiting for the controller's sync")
	return cmd
}

func runApprove(cmd *cobra.Command, streams IOStreams, f *approveFlags, name string) error {
	ctx := cmd.Context()
	ns, err := f.targetNamespace()
	if err != nil {
		return err
	}
	cfg, err := f.restConfig()
	if err != nil {
		return err
	}
	plan, err := approver.Prepare(ctx, approver.Options{Config: cfg, Namespace: ns, Name: name, ControllerNamespace: f.controllerNamespace, WaitTimeout: f.timeout})
	if err != nil {
		return err
	}
	printPlan(streams.Out, plan)
	if !f.yes {
		ok, err := confirm(streams, fmt.Sprintf("Apply these %d object(s)%s as %s and approve revision %s?", len(plan.Pending.Bundle.Objects),
			removalNote(plan), plan.Approver, kv1.ShortSHA(plan.Pending.Revision)))
		if err != nil {
			return err
		}
		if !ok {
			return errNotApproved
		}
	}
	rec, err := plan.Apply(ctx, streams.ErrOut)
	if err != nil {
		return err
	}
	c := plan.Client()
	app := plan.App.DeepCopy()
	before := latestRecord(app)
	token := time.Now().UTC().Format(time.RFC3339Nano)
	patch := client.MergeFrom(app.DeepCopy())
	app.RequestSync(token)
	if err := c.Patch(ctx, app, patch); err != nil {
		return fmt.Errorf("approval of %s recorded, but requesting the sync of %s/%s failed (the controller finds it within its interval): %w", rec.Digest, ns, name, err)
	}
	if f.noWait {
		_, _ = fmt.Fprintf(streams.ErrOut, "approved %s by %s; sync of %s/%s requested\n", rec.Digest, rec.Approver, ns, name)
		return nil
	}
	_, _ = fmt.Fprintf(streams.ErrOut, "approved %s by %s; waiting for the controller to sync %s/%s (timeout %s) ...\n", rec.Digest, rec.Approver, ns, name, f.timeout)
	cl, ok := c.(client.WithWatch)
	if !ok {
		return nil
	}
	if err := waitForSync(ctx, cl, app, token, f.timeout, streams.ErrOut); err != nil {
		return err
	}
	return reportSync(streams.Out, app, before)
}

// printPlan shows what waits and what approving it does.
func printPlan(out io.Writer, p *approver.Plan) {
	pd := p.Pending
	_, _ = fmt.Fprintf(out, "Application %s/%s: revision %s by %s waits since %s\n", p.App.Namespace, p.App.Name, kv1.ShortSHA(pd.Revision),
		orDash(pd.Author), pd.Since.UTC().Format(time.RFC3339))
	if p.Previous != nil {
		_, _ = fmt.Fprintf(out, "Last approval: %s of revision %s by %s at %s\n", p.Previous.Digest, kv1.ShortSHA(p.Previous.Revision),
			p.Previous.Approver, p.Previous.At.UTC().Format(time.RFC3339))
	}
	_, _ = fmt.Fprintf(out, "Out-of-namespace objects (%s):\n", pd.Digest)
	added, changed := setOf(p.Changes.Added), setOf(p.Changes.Changed)
	for _, lc := range p.Live {
		mark := " "
		switch {
		case added[lc.Object]:
			mark = "+"
		case changed[lc.Object]:
			mark = "~"
		}
		_, _ = fmt.Fprintf(out, "  %s %s (in the cluster: %s)\n", mark, lc.Object, lc.Action)
	}
	for _, r := range p.Changes.Removed {
		_, _ = fmt.Fprintf(out, "  - %s (no longer rendered: deleted by this approval)\n", r)
	}
	if p.SelfApproved {
		_, _ = fmt.Fprintf(out, "Note: you (%s) wrote this revision; spec.syncPolicy.approval.allowSelfApproval lets you approve it, and the record says so.\n", p.Approver)
	}
	var diffs []string
	for _, lc := range p.Live {
		if lc.Diff != "" {
			diffs = append(diffs, lc.Diff)
		}
	}
	if len(diffs) > 0 {
		_, _ = fmt.Fprintf(out, "\nChanges against the live objects (server-side dry run as %s):\n%s", p.Approver, strings.Join(diffs, ""))
	}
}

func removalNote(p *approver.Plan) string {
	if len(p.Remove) == 0 {
		return ""
	}
	return fmt.Sprintf(", delete %d", len(p.Remove))
}

func setOf(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// confirm asks question on stderr and reads y/yes from stdin.
func confirm(streams IOStreams, question string) (bool, error) {
	_, _ = fmt.Fprintf(streams.ErrOut, "%s [y/N] ", question)
	line, err := bufio.NewReader(io.LimitReader(streams.In, 1024)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}

package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/spf13/cobra"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

type syncFlags struct {
	kubeFlags
	timeout time.Duration
	noWait  bool
}

func newSyncCommand(streams IOStreams) *cobra.Command {
	f := &syncFlags{}
	cmd := &cobra.Command{
		Use:   "sync APP -n NAMESPACE",
		Short: "Ask the controller to sync an Application now, and wait for the result",
		Long: `Request one sync of APP now: the controller fetches the target revision and
applies it, also for Applications without an automated sync policy. keyless itself
writes nothing to the workloads: it sets the annotation keyless.dev/sync-requested-at
on the Application (you need patch on applications) and waits until the controller
reports the sync.`,
		Example: `  keyless sync web -n myapp
  keyless sync web -n myapp --timeout 5m`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSync(cmd, streams, f, args[0])
		},
	}
	f.addFlags(cmd.Flags())
	cmd.Flags().DurationVar(&f.timeout, "timeout", 2*time.Minute, "how long to wait for the controller")
	cmd.Flags().BoolVar(&f.noWait, "async", false, "request the sync and return at once")
	return cmd
}

func runSync(cmd *cobra.Command, streams IOStreams, f *syncFlags, name string) error {
	ctx := cmd.Context()
	app, err := getApp(cmd, &f.kubeFlags, name)
	if err != nil {
		return err
	}
	c, err := f.appClient()
	if err != nil {
		return err
	}
	token := time.Now().UTC().Format(time.RFC3339Nano)
	patch := client.MergeFrom(app.DeepCopy())
	app.RequestSync(token)
	if err := c.Patch(ctx, app, patch); err != nil {
		return fmt.Errorf("requesting a sync of %s/%s: %w", app.Namespace, name, err)
	}
	_, _ = fmt.Fprintf(streams.ErrOut, "sync of %s/%s requested; waiting for the controller (timeout %s) ...\n", app.Namespace, name, f.timeout)
	if f.noWait {
		return nil
	}
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, f.timeout, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(app), app); err != nil {
			if ctx.Err() != nil {
				return false, ctx.Err() // the timeout, reported below
			}
			return false, err
		}
		return app.Status.LastHandledSyncRequest == token, nil
	})
	switch {
	case wait.Interrupted(err) && ctx.Err() == nil:
		return fmt.Errorf("the controller did not handle the request within %s: is it running and does it manage namespace %q (--namespaces)?", f.timeout, app.Namespace)
	case err != nil:
		return err
	}
	if len(app.Status.History) > 0 {
		h := app.Status.History[0]
		_, _ = fmt.Fprintf(streams.Out, "%s %s: %s by %s (%s)\n", kv1.ShortSHA(h.Revision), h.Result, firstLine(h.Message, 60), h.Author, orDash(h.Changes))
		if h.Result == kv1.SyncResultFailed {
			return errors.New(h.Error)
		}
	}
	if cond := apimeta.FindStatusCondition(app.Status.Conditions, kv1.ReadyCondition); cond != nil && cond.Status != metav1.ConditionTrue && cond.Reason != kv1.ReasonProgressing {
		return fmt.Errorf("%s: %s", cond.Reason, cond.Message)
	}
	return nil
}

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/spf13/cobra"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/controller"
)

type syncFlags struct {
	kubeFlags
	timeout        time.Duration
	noWait         bool
	overrideWindow bool
	reason         string
}

// maxOverrideReason bounds --reason.
const maxOverrideReason = 1024

// syncPollInterval is how often `keyless sync` reads the Application while
// it waits; syncSilentAfter is how long it waits before saying that no
// controller has picked the request up yet.
const (
	syncPollInterval = 250 * time.Millisecond
	syncSilentAfter  = 10 * time.Second
	// syncReadTimeout bounds one read of the Application.
	syncReadTimeout = 30 * time.Second
)

func newSyncCommand(streams IOStreams) *cobra.Command {
	f := &syncFlags{}
	cmd := &cobra.Command{
		Use:   "sync APP -n NAMESPACE",
		Short: "Ask the controller to sync an Application now, and wait for the result",
		Long: `Request one sync of APP now: the controller fetches the target revision and
applies it, also for Applications without an automated sync policy. keyless itself
writes nothing to the workloads: it sets the annotation keyless.dev/sync-requested-at
on the Application (you need patch on applications) and waits until the controller
acknowledges the request.

Every request is answered, whatever the outcome: while the sync runs, each phase,
wave and the objects it waits for are printed as they change (on stderr); then the
result (the revision, who changed it, each object created, configured or pruned,
each hook run) on stdout. A request the controller could not carry out (the Git
server, a signature, the render, a decryption key, an invalid spec, a suspended
Application, a shard that does not serve the namespace) is answered with that error
at once, and sync exits 1.`,
		Example: `  # sync and wait for the result (exit 1 when the sync fails)
  keyless sync web -n myapp

  # give a long sync (hooks, waves) more time
  keyless sync web -n myapp --timeout 10m

  # only request it
  keyless sync web -n myapp --async

  # through a closed sync window (a freeze), recorded with you and the reason
  keyless sync web -n myapp --override-window --reason "INC-123: hotfix"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSync(cmd, streams, f, args[0])
		},
	}
	f.addFlags(cmd.Flags())
	cmd.Flags().DurationVar(&f.timeout, "timeout", 2*time.Minute, "how long to wait for the controller's answer")
	cmd.Flags().BoolVar(&f.noWait, "async", false, "request the sync and return at once")
	cmd.Flags().BoolVar(&f.overrideWindow, "override-window", false, "sync even though a sync window is closed; needs --reason, and records you (as the API server names you) and the reason in history and an Event")
	cmd.Flags().StringVar(&f.reason, "reason", "", "why the window is overridden, e.g. an incident or change number (with --override-window)")
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
	before := latestRecord(app)
	token := time.Now().UTC().Format(time.RFC3339Nano)
	patch := client.MergeFrom(app.DeepCopy())
	app.RequestSync(token)
	if err := f.addOverride(ctx, app, token); err != nil {
		return err
	}
	if err := c.Patch(ctx, app, patch); err != nil {
		return fmt.Errorf("requesting a sync of %s/%s: %w", app.Namespace, name, err)
	}
	if f.noWait {
		_, _ = fmt.Fprintf(streams.ErrOut, "sync of %s/%s requested\n", app.Namespace, name)
		return nil
	}
	_, _ = fmt.Fprintf(streams.ErrOut, "sync of %s/%s requested; waiting for the controller (timeout %s) ...\n", app.Namespace, name, f.timeout)
	if err := waitForSync(ctx, c, app, token, f.timeout, streams.ErrOut); err != nil {
		return err
	}
	return reportSync(streams.Out, app, before)
}

// addOverride adds the window override of --override-window to app's
// sync request token: who asks (SelfSubjectReview) and why.
func (f *syncFlags) addOverride(ctx context.Context, app *kv1.Application, token string) error {
	if !f.overrideWindow {
		if f.reason != "" {
			return errors.New("--reason goes with --override-window")
		}
		return nil
	}
	reason := strings.TrimSpace(f.reason)
	if reason == "" || len(reason) > maxOverrideReason {
		return fmt.Errorf("--override-window needs --reason (at most %d characters): why the window is overridden, e.g. INC-123", maxOverrideReason)
	}
	who, err := f.whoAmI(ctx)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(controller.WindowOverride{Token: token, By: who, Reason: reason})
	if err != nil {
		return err
	}
	app.Annotations[kv1.OverrideWindowAnnotation] = string(raw)
	return nil
}

// waitForSync polls app until the controller acknowledges the request token,
// printing the sync's progress (status.operation) to progress as it changes.
func waitForSync(ctx context.Context, c client.Client, app *kv1.Application, token string, timeout time.Duration, progress io.Writer) error {
	// The deadline is kept here, not on the reads' context: client-go's
	// rate limiter fails a read that would end past its context's
	// deadline, which is not the controller's answer.
	start := time.Now()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(syncPollInterval)
	defer tick.Stop()
	lastOp, noticed := "", false
	for {
		readCtx, cancel := context.WithTimeout(ctx, syncReadTimeout)
		err := c.Get(readCtx, client.ObjectKeyFromObject(app), app)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			return fmt.Errorf("reading %s/%s: %w", app.Namespace, app.Name, err)
		case app.Status.LastHandledSyncRequest == token:
			return nil
		}
		if line := describeOperation(app.Status.Operation); line != "" && line != lastOp {
			_, _ = fmt.Fprintf(progress, "%s  %s\n", time.Since(start).Round(time.Second), line)
			lastOp = line
		}
		if !noticed && app.Status.Operation == nil && time.Since(start) > syncSilentAfter {
			noticed = true
			_, _ = fmt.Fprintf(progress, "no controller has acknowledged the request after %s; still waiting ...\n", syncSilentAfter)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return unacknowledgedError(app, timeout)
		case <-tick.C:
		}
	}
}

// describeOperation is one line for a running sync's step ("": none).
func describeOperation(op *kv1.OperationStatus) string {
	if op == nil {
		return ""
	}
	line := op.Phase
	if op.Wave != 0 {
		line += fmt.Sprintf(" wave %d", op.Wave)
	}
	if len(op.Waiting) > 0 {
		line += ": waiting for " + strings.Join(op.Waiting, ", ")
	} else {
		line += ": applying"
	}
	return line
}

// unacknowledgedError explains a request no controller answered in time:
// nothing serves the Application (no controller running, its namespace not
// managed, its shard not running), or its sync outlasts the timeout.
func unacknowledgedError(app *kv1.Application, timeout time.Duration) error {
	if op := app.Status.Operation; op != nil {
		return fmt.Errorf("the sync of %s/%s is still running after %s (%s): it goes on; follow it with `keyless get app %s -n %s`, or wait longer with --timeout",
			app.Namespace, app.Name, timeout, describeOperation(op), app.Name, app.Namespace)
	}
	if shard, ok := app.Labels[kv1.ShardLabel]; ok {
		return fmt.Errorf("no controller acknowledged the request within %s: %s/%s is labelled %s=%s, and no running controller of shard %q serves namespace %s (ask the cluster admin which shards run, or remove the label)",
			timeout, app.Namespace, app.Name, kv1.ShardLabel, shard, shard, app.Namespace)
	}
	return fmt.Errorf("no controller acknowledged the request within %s: no running controller serves namespace %s (is it running, and does `keyless install --namespaces` include %s?)",
		timeout, app.Namespace, app.Namespace)
}

// latestRecord is a copy of app's newest history record (nil: none).
func latestRecord(app *kv1.Application) *kv1.SyncRecord {
	if len(app.Status.History) == 0 {
		return nil
	}
	rec := app.Status.History[0]
	return &rec
}

// reportSync prints the controller's answer to a request: the sync it
// recorded (if this request made one) and, when the Application is not
// Ready for a reason other than rolling out, returns that as the error.
func reportSync(out io.Writer, app *kv1.Application, before *kv1.SyncRecord) error {
	rec := latestRecord(app)
	if rec != nil && !sameRecord(rec, before) {
		_, _ = fmt.Fprintf(out, "%s %s: %s by %s (%s)\n", kv1.ShortSHA(rec.Revision), rec.Result, firstLine(rec.Message, 60), orDash(rec.Author), orDash(rec.Changes))
		if rec.WindowOverride != "" {
			_, _ = fmt.Fprintf(out, "  through a closed sync window, overridden by %s\n", rec.WindowOverride)
		}
		for _, c := range rec.Changed {
			_, _ = fmt.Fprintf(out, "  %s\n", c)
		}
		for _, h := range rec.Hooks {
			_, _ = fmt.Fprintf(out, "  hook %s %s/%s %s %s\n", h.Phase, h.Kind, h.Name, h.Result, orDash(h.Duration))
		}
		if rec.Result == kv1.SyncResultFailed {
			return errors.New(rec.Error)
		}
	}
	cond := apimeta.FindStatusCondition(app.Status.Conditions, kv1.ReadyCondition)
	switch {
	case cond == nil:
		return nil
	case cond.Status == metav1.ConditionTrue:
		if rec == nil || sameRecord(rec, before) {
			_, _ = fmt.Fprintf(out, "%s\n", cond.Message)
		}
		return nil
	case cond.Reason == kv1.ReasonProgressing:
		_, _ = fmt.Fprintf(out, "rolling out: %s\n", cond.Message)
		return nil
	}
	return fmt.Errorf("%s: %s", cond.Reason, cond.Message)
}

// sameRecord reports whether a and b are the same history record.
func sameRecord(a, b *kv1.SyncRecord) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Revision == b.Revision && a.StartedAt.Equal(&b.StartedAt) && a.Result == b.Result && a.Error == b.Error
}

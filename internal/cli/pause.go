package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

type pauseFlags struct {
	kubeFlags
	duration time.Duration
	reason   string
	codify   codifyFlags
}

func newPauseCommand(streams IOStreams) *cobra.Command {
	f := &pauseFlags{}
	cmd := &cobra.Command{
		Use:   "pause APP -n NAMESPACE (--for DURATION --reason TEXT | --codify [--push])",
		Short: "Break-glass: stop self-heal of an Application for a bounded time",
		Long: `Stop reverting changes made in the cluster to APP's objects for --for (at most 24h),
e.g. while an incident is handled by hand. Meanwhile the controller reports every change as
drift, with the field managers that made it (status.pause.drift; the API server's audit log
says who for sure), and new commits still sync. At the pause's end the drift is reverted to
Git. A pause always has an expiry and a reason; who paused is recorded as the API server
names you (SelfSubjectReview), in status.pause and a Paused Event. To end it early, pause
again with --for 1s.

To keep what was changed by hand instead, --codify (while the pause lasts) writes the drift
the controller recorded (status.pause.drift) into the Application's manifests in Git: each
scalar a manifest sets that differs live takes the live value, byte-for-byte in place, in one
commit authored by you (--author, else GIT_AUTHOR_NAME/EMAIL, git's user.name/email) on the
Application's branch — or on a new branch (--new-branch) for a pull/merge request when the
branch takes changes only through review. It prints the changes and what it did not write
back (a Secret, a field or list entry removed by hand, an object a chart renders). Without
--push it pushes nothing. The Git credential is chosen as keyless rollback's.`,
		Example: `  # hands on the cluster for half an hour, then back to Git
  keyless pause web -n myapp --for 30m --reason "INC-123: scaling by hand"

  # keep the hand-made change instead: see it, then push it for review
  keyless pause web -n myapp --codify
  keyless pause web -n myapp --codify --push --new-branch codify-inc-123`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPause(cmd, streams, f, args[0])
		},
	}
	f.addFlags(cmd.Flags())
	cmd.Flags().DurationVar(&f.duration, "for", 0, "how long self-heal stops (required, at most 24h)")
	cmd.Flags().StringVar(&f.reason, "reason", "", "why, e.g. an incident number (required)")
	f.codify.addFlags(cmd.Flags())
	return cmd
}

func runPause(cmd *cobra.Command, streams IOStreams, f *pauseFlags, name string) error {
	ctx := cmd.Context()
	if f.codify.codify {
		if f.duration != 0 {
			return errors.New("--codify writes the drift of the pause in force to Git; it does not pause: drop --for")
		}
		return runCodify(cmd, streams, f, name)
	}
	switch {
	case f.duration <= 0:
		return errors.New("--for is required: a pause without expiry is refused (at most 24h)")
	case f.duration > kv1.MaxPause:
		return fmt.Errorf("--for %s is longer than %s: a break-glass pause is bounded", f.duration, kv1.MaxPause)
	case strings.TrimSpace(f.reason) == "" || len(f.reason) > maxOverrideReason:
		return fmt.Errorf("--reason is required (at most %d characters): why self-heal stops, e.g. INC-123", maxOverrideReason)
	}
	app, err := getApp(cmd, &f.kubeFlags, name)
	if err != nil {
		return err
	}
	if !app.SelfHeals() {
		return fmt.Errorf("application %s/%s does not self-heal (spec.syncPolicy.automated.selfHeal): there is nothing to pause", app.Namespace, name)
	}
	who, err := f.whoAmI(ctx)
	if err != nil {
		return err
	}
	until := time.Now().Add(f.duration).UTC().Truncate(time.Second)
	raw, err := json.Marshal(kv1.Pause{Until: until, By: who, Reason: strings.TrimSpace(f.reason)})
	if err != nil {
		return err
	}
	c, err := f.appClient()
	if err != nil {
		return err
	}
	patch := client.MergeFrom(app.DeepCopy())
	if app.Annotations == nil {
		app.Annotations = map[string]string{}
	}
	app.Annotations[kv1.PauseAnnotation] = string(raw)
	if err := c.Patch(ctx, app, patch); err != nil {
		return fmt.Errorf("pausing %s/%s: %w", app.Namespace, name, err)
	}
	_, err = fmt.Fprintf(streams.Out, "self-heal of %s/%s paused by %s until %s (%s); drift made meanwhile is reverted to Git then\n",
		app.Namespace, name, who, until.Format(time.RFC3339), strings.TrimSpace(f.reason))
	return err
}

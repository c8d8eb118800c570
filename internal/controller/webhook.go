package controller

import (
	"context"
	"errors"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/credential"
	"github.com/keyless-cd/keyless/internal/gitsource"
	"github.com/keyless-cd/keyless/internal/webhook"
)

// NamespaceWebhookSecret is the Secret, in a managed namespace, whose keys
// (NamespaceWebhookGitHubKey, NamespaceWebhookGitLabKey) verify pushes
// posted to /hooks/github/<namespace> and /hooks/gitlab/<namespace>; such a
// push triggers that namespace's Applications only.
const (
	NamespaceWebhookSecret    = "keyless-webhook"
	NamespaceWebhookGitHubKey = webhook.GitHub
	NamespaceWebhookGitLabKey = webhook.GitLab
)

// webhookTargets is the controller's side of the webhook receiver: the keys
// that verify a request and the Applications a push triggers.
type webhookTargets struct {
	client client.Reader
	// secrets reads a namespace's NamespaceWebhookSecret (uncached).
	secrets client.Reader
	source  *gitsource.Source
	// githubSecret and gitlabToken are the controller-wide keys of
	// /hooks/github and /hooks/gitlab; either may be empty (401).
	githubSecret, gitlabToken []byte
	// queue receives the Applications to reconcile now.
	queue chan<- event.GenericEvent
	// poke tells an Application's running sync that a push arrived: a
	// wait on its old revision ends (supersede.go).
	poke func(types.NamespacedName)
}

// newWebhookReceiver returns the receiver for managed namespaces, verifying
// with t's keys and triggering through t.
func newWebhookReceiver(t *webhookTargets, namespaces []string) *webhook.Receiver {
	return &webhook.Receiver{Key: t.key, Namespaces: namespaces, Trigger: t.trigger}
}

// key returns the secret that verifies forge's requests for namespace ("":
// the controller-wide one).
func (w *webhookTargets) key(ctx context.Context, forge, namespace string) ([]byte, error) {
	if namespace == "" {
		if forge == webhook.GitHub {
			return w.githubSecret, nil
		}
		return w.gitlabToken, nil
	}
	if w.secrets == nil {
		return nil, errors.New("no Secret reader")
	}
	sec := &corev1.Secret{}
	if err := w.secrets.Get(ctx, client.ObjectKey{Namespace: namespace, Name: NamespaceWebhookSecret}, sec); err != nil {
		return nil, err
	}
	if err := credential.Readable(sec, NamespaceWebhookSecret); err != nil {
		return nil, err
	}
	key := sec.Data[forge]
	if err := webhook.CheckSecret(key); err != nil {
		return nil, err
	}
	return key, nil
}

// trigger enqueues every Application (of namespace, or of every managed
// namespace when "") tracking one of ev's URLs at ev's ref.
func (w *webhookTargets) trigger(ctx context.Context, ev webhook.PushEvent, namespace string) (int, error) {
	wanted := map[string]bool{}
	for _, u := range ev.RepoURLs {
		if u != "" {
			wanted[webhook.NormalizeRepoURL(u)] = true
		}
	}
	apps := &kv1.ApplicationList{}
	var opts []client.ListOption
	if namespace != "" {
		opts = append(opts, client.InNamespace(namespace))
	}
	if err := w.client.List(ctx, apps, opts...); err != nil {
		return 0, err
	}
	n := 0
	// One wait for the whole push, not one per Application: a push that
	// finds the queue full holds its webhook request (and its slot of the
	// receiver's MaxConcurrent) webhookQueueWait at most.
	wait := time.NewTimer(webhookQueueWait)
	defer wait.Stop()
	waited := false
	for i := range apps.Items {
		app := &apps.Items[i]
		src, ok := pushedSource(app, wanted, ev.Ref)
		if !ok {
			continue
		}
		w.source.Invalidate(src.RepoURL)
		if w.poke != nil {
			w.poke(types.NamespacedName{Namespace: app.Namespace, Name: app.Name})
		}
		ge := event.GenericEvent{Object: app}
		if !waited {
			select {
			case w.queue <- ge:
				n++
				continue
			case <-wait.C:
				waited = true
			case <-ctx.Done():
				return n, ctx.Err()
			}
		}
		select { // the wait is spent: only if there is room now
		case w.queue <- ge:
			n++
		default:
			log.FromContext(ctx).Info("webhook trigger queue full; the Application syncs at its interval", "namespace", app.Namespace, "app", app.Name)
		}
	}
	return n, nil
}

// webhookQueueWait bounds how long one push waits for room in the trigger
// queue, all its Applications together.
const webhookQueueWait = 5 * time.Second

// pushedSource is the Git source of app (spec.source, or any entry of
// spec.sources: a values source too) at a repository of wanted whose
// target revision the pushed ref moves.
func pushedSource(app *kv1.Application, wanted map[string]bool, ref string) (kv1.ApplicationSource, bool) {
	srcs := app.Spec.Sources
	if len(srcs) == 0 {
		srcs = []kv1.ApplicationSource{app.Spec.Source}
	}
	for _, src := range srcs {
		if src.Chart == "" && wanted[webhook.NormalizeRepoURL(src.RepoURL)] && webhook.RefMatches(src.TargetRevision, ref) {
			return src, true
		}
	}
	return kv1.ApplicationSource{}, false
}

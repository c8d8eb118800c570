package controller

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/go-logr/logr"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/credential"
	"github.com/keyless-cd/keyless/internal/egress"
	"github.com/keyless-cd/keyless/internal/notify"
)

// notificationRecord is a generic webhook's body: the sync's audit record
// and the event it reports.
type notificationRecord struct {
	Event string `json:"event"`
	AuditRecord
}

// notification is one message for one of an Application's receivers.
type notification struct {
	app  appRef
	spec kv1.Notification
	msg  notify.Message
}

// notifier delivers notifications off the reconcile path, each retried
// with backoff on its own; a failure is an Event and a metric, never a
// failed sync.
type notifier struct {
	secrets  client.Reader
	sender   *notify.Sender
	recorder recorder.EventRecorder
	metrics  *metrics
	queue    *deliveryQueue[*notification]
}

// newNotifier delivers through an egress client of eg (eg.AllowLoopback:
// also plain http://, for loopback tests).
func newNotifier(secrets client.Reader, rec recorder.EventRecorder, m *metrics, logger logr.Logger, eg egress.Options) *notifier {
	n := &notifier{
		secrets: secrets, recorder: rec, metrics: m,
		sender: &notify.Sender{HTTP: egress.NewClient(eg), AllowInsecureHTTP: eg.AllowLoopback},
	}
	n.queue = newDeliveryQueue("notification", logger, n.deliver, permanentDelivery, n.giveUp,
		func(d *notification) string { return d.app.Namespace })
	return n
}

// notify queues event for every receiver of app that wants it; rec is the
// sync's audit record and text the one-line summary.
func (n *notifier) notify(app *kv1.Application, event string, rec AuditRecord, text string) {
	if n == nil || len(app.Spec.Notifications) == 0 {
		return
	}
	rec.Audit = auditKind
	body, err := json.Marshal(notificationRecord{Event: event, AuditRecord: rec})
	if err != nil {
		return
	}
	msg := notify.Message{Event: event, Delivery: notify.NewDelivery(), Record: body,
		Text: fmt.Sprintf("%s %s: %s", app.StatusContext(), event, text)}
	for _, spec := range app.Spec.Notifications {
		if !spec.Wants(event) {
			continue
		}
		if !n.queue.add(&notification{app: refOf(app), spec: spec, msg: msg}) {
			n.metrics.deliveries.WithLabelValues(deliveryNotification, "dropped").Inc()
		}
	}
}

func (n *notifier) deliver(ctx context.Context, d *notification) error {
	keys := []string{kv1.NotificationAddressKey}
	if d.spec.Type == kv1.NotifyWebhook {
		keys = append(keys, kv1.NotificationHMACKey)
	}
	vals, err := readSecretKeys(ctx, n.secrets, secretUse{namespace: d.app.Namespace, name: d.spec.SecretRef.Name,
		use: credential.Notification, field: "spec.notifications secretRef"}, keys...)
	if err != nil {
		return err
	}
	t := notify.Target{Type: d.spec.Type, Address: string(vals[0])}
	if len(vals) > 1 {
		t.HMACKey = vals[1]
	}
	if err := n.sender.Send(ctx, t, d.msg); err != nil {
		n.metrics.deliveries.WithLabelValues(deliveryNotification, "retry").Inc()
		return err
	}
	n.metrics.deliveries.WithLabelValues(deliveryNotification, "success").Inc()
	return nil
}

func (n *notifier) giveUp(d *notification, err error) {
	n.metrics.deliveries.WithLabelValues(deliveryNotification, "failed").Inc()
	// The action names the receiver: Events differing only in their message
	// are folded into one series (the first message shown), which would
	// hide a second receiver's failure behind the first's.
	n.recorder.Eventf(d.app.object(), nil, corev1.EventTypeWarning, ReasonNotificationFailed, "Notify "+d.spec.SecretRef.Name,
		"could not deliver %s to the %s notification of Secret %s: %v", d.msg.Event, d.spec.Type, d.spec.SecretRef.Name, err)
}

// syncEventOf is the notification event of a recorded sync ("" for none).
func syncEventOf(rec kv1.SyncRecord) string {
	switch {
	case rec.Trigger == TriggerDelete, rec.Result == kv1.SyncResultAbandoned:
		return ""
	case rec.Result == kv1.SyncResultFailed:
		return kv1.EventSyncFailed
	case rec.Trigger == TriggerDrift:
		return kv1.EventDriftReverted
	}
	return kv1.EventSynced
}

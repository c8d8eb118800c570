package controller_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/controller"
	"github.com/keyless-cd/keyless/internal/notify"
)

// endpoint is a team's notification receiver: it records what it is sent
// and answers fail times with 503 before accepting.
type endpoint struct {
	srv  *httptest.Server
	mu   sync.Mutex
	fail int
	code int
	got  []delivery
}

type delivery struct {
	header http.Header
	body   []byte
}

func newEndpoint(t *testing.T, fail, code int) *endpoint {
	t.Helper()
	ep := &endpoint{fail: fail, code: code}
	ep.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ep.mu.Lock()
		defer ep.mu.Unlock()
		if ep.fail > 0 {
			ep.fail--
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		ep.got = append(ep.got, delivery{header: r.Header.Clone(), body: b})
		w.WriteHeader(ep.code)
	}))
	t.Cleanup(ep.srv.Close)
	return ep
}

// wait returns the first delivery whose body contains want.
func (ep *endpoint) wait(t *testing.T, want string, timeout time.Duration) delivery {
	t.Helper()
	var found delivery
	waitFor(t, timeout, "a notification with "+want, func() (bool, string) {
		ep.mu.Lock()
		defer ep.mu.Unlock()
		for _, d := range ep.got {
			if strings.Contains(string(d.body), want) {
				found = d
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d deliveries so far", len(ep.got))
	})
	return found
}

// TestNotificationsAreSignedRetriedAndNeverBlockASync: a generic webhook
// receives the JSON audit record of each sync, drift revert and failure,
// HMAC-signed; a Slack receiver that fails twice gets the failure on the
// third try; a receiver that refuses for good becomes a Warning Event —
// and the Application keeps syncing throughout.
func TestNotificationsAreSignedRetriedAndNeverBlockASync(t *testing.T) {
	e, _ := seedApp(t, 5*time.Second)
	ctx := t.Context()
	hook, slack, gone := newEndpoint(t, 0, http.StatusOK), newEndpoint(t, 2, http.StatusOK), newEndpoint(t, 0, http.StatusNotFound)
	unlabelled := newEndpoint(t, 0, http.StatusOK)
	const hmacKey = "team-hmac-key"
	for name, data := range map[string]map[string]string{
		"notify-hook":  {kv1.NotificationAddressKey: hook.srv.URL + "/keyless", kv1.NotificationHMACKey: hmacKey},
		"notify-slack": {kv1.NotificationAddressKey: slack.srv.URL + "/services/T0/B0/x"},
		"notify-gone":  {kv1.NotificationAddressKey: gone.srv.URL + "/removed", kv1.NotificationHMACKey: "k"},
		// Any other Secret of the namespace that happens to hold an address
		// (and a key): not labelled for notifications, never used.
		"some-secret": {kv1.NotificationAddressKey: unlabelled.srv.URL + "/x", kv1.NotificationHMACKey: "k"},
	} {
		labels := map[string]string{kv1.CredentialLabel: kv1.CredentialNotification}
		if name == "some-secret" {
			labels = nil
		}
		if err := e.admin.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: appNS, Labels: labels}, StringData: data}); err != nil {
			t.Fatal(err)
		}
	}
	app := e.app("web")
	patch := client.MergeFrom(app.DeepCopy())
	app.Spec.Notifications = []kv1.Notification{
		{Type: kv1.NotifyWebhook, SecretRef: kv1.LocalObjectReference{Name: "notify-hook"}},
		{Type: kv1.NotifySlack, SecretRef: kv1.LocalObjectReference{Name: "notify-slack"}, Events: []string{kv1.EventSyncFailed}},
		{Type: kv1.NotifyWebhook, SecretRef: kv1.LocalObjectReference{Name: "notify-gone"}, Events: []string{kv1.EventSynced}},
		{Type: kv1.NotifyWebhook, SecretRef: kv1.LocalObjectReference{Name: "some-secret"}, Events: []string{kv1.EventSynced}},
	}
	if err := e.admin.Patch(ctx, app, patch); err != nil {
		t.Fatal(err)
	}

	t.Log("a new commit: Synced, with who and what, signed")
	next := e.push(manifests("registry.example.com/web:2.0", "hello"), nil, "web 2.0")
	d := hook.wait(t, next, 30*time.Second)
	if got := d.header.Get(notify.SignatureHeader); got != notify.Sign([]byte(hmacKey), d.body) {
		t.Errorf("signature %q does not verify under the Secret's hmacKey", got)
	}
	var rec struct {
		Event string `json:"event"`
		controller.AuditRecord
	}
	if err := json.Unmarshal(d.body, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Event != kv1.EventSynced || rec.Author != "Dana Developer <dana@example.com>" || len(rec.Changes) == 0 || rec.Audit != "keyless.dev/sync" {
		t.Errorf("record %+v: want Synced by Dana with its changes", rec)
	}
	e.waitApp("web", "Ready at 2.0 while a receiver refuses", 30*time.Second, func(a *kv1.Application) bool {
		return ready(a) && a.Status.LastAppliedRevision == next
	})

	t.Log("the refusing receiver: a Warning Event, the sync unaffected")
	e.waitEvent("web", controller.ReasonNotificationFailed, 30*time.Second, "404", "notify-gone")

	t.Log("the unlabelled Secret: refused, naming why, its address never contacted")
	e.waitEvent("web", controller.ReasonNotificationFailed, 30*time.Second, appNS+"/some-secret", "is not labelled keyless.dev/credential=notification")
	unlabelled.mu.Lock()
	if n := len(unlabelled.got); n != 0 {
		t.Errorf("the unlabelled Secret's address got %d deliveries", n)
	}
	unlabelled.mu.Unlock()

	t.Log("drift reverted by selfHeal")
	dep, err := e.cs.AppsV1().Deployments(appNS).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dep.Spec.Template.Spec.Containers[0].Image = "evil.example/miner:1"
	if _, err := e.cs.AppsV1().Deployments(appNS).Update(ctx, dep, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	hook.wait(t, `"event":"DriftReverted"`, 30*time.Second)
	e.waitImage("registry.example.com/web:2.0", 10*time.Second)

	t.Log("a rollout that cannot finish (no node matches): HealthDegraded")
	stuck := manifests("registry.example.com/web:2.1", "hello")
	stuck["deploy/deploy.yaml"] = strings.NewReplacer("  replicas: 1\n", "  replicas: 1\n  progressDeadlineSeconds: 2\n",
		"    spec:\n      securityContext", "    spec:\n      nodeSelector: {keyless.dev/no-such-node: \"true\"}\n      securityContext").Replace(stuck["deploy/deploy.yaml"])
	e.push(stuck, nil, "web 2.1 on no node")
	d = hook.wait(t, `"event":"HealthDegraded"`, 60*time.Second)
	if !strings.Contains(string(d.body), "Deployment/web") {
		t.Errorf("HealthDegraded record %s: want the failing object named", d.body)
	}

	t.Log("a failing commit: SyncFailed to the webhook and, after two 503s, to Slack")
	bad := manifests("registry.example.com/web:3.0", "hello")
	bad["deploy/clusterrole.yaml"] = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: grab-everything\nrules: []\n"
	e.push(bad, nil, "web 3.0 and a ClusterRole")
	hook.wait(t, `"event":"SyncFailed"`, 30*time.Second)
	s := slack.wait(t, "SyncFailed", 30*time.Second)
	var msg map[string]string
	if err := json.Unmarshal(s.body, &msg); err != nil || !strings.Contains(msg["text"], "keyless/"+appNS+"/web") {
		t.Errorf("Slack body %s: want {\"text\"} naming the Application", s.body)
	}
	if s.header.Get(notify.SignatureHeader) != "" {
		t.Error("a Slack message carries no keyless signature")
	}
}

package controller_test

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

// denyingWebhook is a real validating admission webhook the API server
// calls for ConfigMaps of appNS: it denies the first deny[name] requests
// for a ConfigMap of that name (every request when negative).
type denyingWebhook struct {
	mu    sync.Mutex
	deny  map[string]int
	calls map[string]int
}

func (d *denyingWebhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var review struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Request    struct {
			UID  string `json:"uid"`
			Name string `json:"name"`
		} `json:"request"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&review); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	d.mu.Lock()
	d.calls[review.Request.Name]++
	n, limit := d.calls[review.Request.Name], d.deny[review.Request.Name]
	d.mu.Unlock()
	type status struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	type response struct {
		UID     string  `json:"uid"`
		Allowed bool    `json:"allowed"`
		Status  *status `json:"status,omitempty"`
	}
	resp := response{UID: review.Request.UID, Allowed: true}
	if limit < 0 || n <= limit {
		resp = response{UID: review.Request.UID, Status: &status{Code: http.StatusForbidden, Message: fmt.Sprintf("injected denial %d of ConfigMap %s", n, review.Request.Name)}}
	}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(struct {
		APIVersion string   `json:"apiVersion"`
		Kind       string   `json:"kind"`
		Response   response `json:"response"`
	}{"admission.k8s.io/v1", "AdmissionReview", resp}); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

func (d *denyingWebhook) callsFor(name string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls[name]
}

// installDenyingWebhook registers d with the API server for appNS's ConfigMaps.
func (e *env) installDenyingWebhook(d *denyingWebhook) {
	e.t.Helper()
	srv := httptest.NewTLSServer(d)
	e.t.Cleanup(srv.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	url := srv.URL + "/validate"
	none, fail, scope := admissionregistrationv1.SideEffectClassNone, admissionregistrationv1.Fail, admissionregistrationv1.NamespacedScope
	timeout := int32(5)
	cfg := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "test-denials"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name: "denials.test.keyless.dev", ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: ca},
			Rules: []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
				Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}, Scope: &scope}}},
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": appNS}},
			SideEffects:             &none,
			FailurePolicy:           &fail,
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          &timeout,
		}},
	}
	if err := e.admin.Create(e.t.Context(), cfg); err != nil {
		e.t.Fatal(err)
	}
}

// retryingApp creates an Application of path with spec.syncPolicy.retry.
func (e *env) retryingApp(name, path string, limit int64) {
	e.t.Helper()
	factor := int64(2)
	app := &kv1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: appNS},
		Spec: kv1.ApplicationSpec{
			Source: kv1.ApplicationSource{RepoURL: e.git.RepoURL(repoName), TargetRevision: "main", Path: path,
				SecretRef: &kv1.LocalObjectReference{Name: "myapp-git"}},
			SyncPolicy: &kv1.SyncPolicy{Automated: &kv1.AutomatedSyncPolicy{Prune: true},
				Retry: &kv1.RetryStrategy{Limit: &limit, Backoff: &kv1.RetryBackoff{Duration: "1s", Factor: &factor, MaxDuration: "10s"}}},
			Interval: &metav1.Duration{Duration: time.Hour},
		},
	}
	if err := e.admin.Create(e.t.Context(), app); err != nil {
		e.t.Fatal(err)
	}
}

// TestSyncRetry: spec.syncPolicy.retry retries a sync an admission
// webhook denies twice, with its backoff, until it succeeds; gives up
// (Stalled) past its limit; and never retries a render error.
func TestSyncRetry(t *testing.T) {
	e := newEnv(t)
	hook := &denyingWebhook{deny: map[string]int{"flaky": 2, "never": -1}, calls: map[string]int{}}
	e.installDenyingWebhook(hook)
	rev := e.push(map[string]string{"flaky/cm.yaml": configMapFile("flaky", "1"), "never/cm.yaml": configMapFile("never", "1"),
		"broken/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: broken\n"}, nil, "three apps")
	time.Sleep(1100 * time.Millisecond)
	e.startController(time.Hour)

	e.retryingApp("flaky", "flaky", 5)
	a := e.waitApp("flaky", "synced after two denials", time.Minute, func(a *kv1.Application) bool {
		return a.Status.LastAppliedRevision == rev && ready(a)
	})
	var retried []string
	for _, h := range a.Status.History {
		if h.Result == kv1.SyncResultFailed {
			retried = append(retried, h.Error)
		}
	}
	if len(retried) == 0 || !strings.Contains(strings.Join(retried, "\n"), "injected denial") || !strings.Contains(strings.Join(retried, "\n"), "retry 1 of 5 in 1s") {
		t.Fatalf("history does not show the retried failures: %q", retried)
	}
	if n := hook.callsFor("flaky"); n < 3 {
		t.Fatalf("the webhook saw %d requests for flaky, want the 2 denied and the one allowed", n)
	}

	t.Run("past its limit the sync gives up", func(t *testing.T) {
		e.retryingApp("never", "never", 1)
		a := e.waitApp("never", "Stalled after one retry", time.Minute, func(a *kv1.Application) bool {
			return strings.Contains(condition(a, kv1.StalledCondition), "gave up after 1 retries")
		})
		calls := hook.callsFor("never")
		time.Sleep(4 * time.Second)
		if later := hook.callsFor("never"); later != calls {
			t.Fatalf("the sync went on after giving up: %d webhook calls, then %d (%s)", calls, later, condition(a, kv1.StalledCondition))
		}
	})

	t.Run("a render error is not retried", func(t *testing.T) {
		e.retryingApp("broken", "broken", 5)
		a := e.waitApp("broken", "RenderFailed", time.Minute, func(a *kv1.Application) bool {
			return strings.Contains(condition(a, kv1.StalledCondition), "RenderFailed")
		})
		time.Sleep(4 * time.Second)
		b := e.waitApp("broken", "still one failed sync", time.Second, func(*kv1.Application) bool { return true })
		if len(b.Status.History) != len(a.Status.History) || len(b.Status.History) != 1 || strings.Contains(b.Status.History[0].Error, "retry") {
			t.Fatalf("a render error was retried: history %+v", b.Status.History)
		}
	})
}

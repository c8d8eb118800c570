package notify

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/egress"
)

func receiver(t *testing.T, code int) (*httptest.Server, *[]*http.Request, *[][]byte) {
	t.Helper()
	var reqs []*http.Request
	var bodies [][]byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		reqs, bodies = append(reqs, r), append(bodies, b)
		w.WriteHeader(code)
	}))
	t.Cleanup(srv.Close)
	return srv, &reqs, &bodies
}

func sender() *Sender {
	return &Sender{HTTP: egress.NewClient(egress.Options{AllowLoopback: true}), AllowInsecureHTTP: true}
}

func TestWebhookIsSignedAndCarriesTheRecord(t *testing.T) {
	srv, reqs, bodies := receiver(t, http.StatusOK)
	rec := []byte(`{"event":"Synced","app":"web"}`)
	key := []byte("k3y")
	err := sender().Send(t.Context(), Target{Type: kv1.NotifyWebhook, Address: srv.URL + "/hook", HMACKey: key},
		Message{Event: kv1.EventSynced, Delivery: "d1", Record: rec, Text: "synced"})
	if err != nil {
		t.Fatal(err)
	}
	r, body := (*reqs)[0], (*bodies)[0]
	if string(body) != string(rec) {
		t.Errorf("body %s, want the record", body)
	}
	if got := r.Header.Get(SignatureHeader); got != Sign(key, body) || got == Sign([]byte("other"), body) {
		t.Errorf("signature %q does not verify under the key", got)
	}
	if r.Header.Get(EventHeader) != kv1.EventSynced || r.Header.Get(DeliveryHeader) != "d1" {
		t.Errorf("headers %v", r.Header)
	}
}

func TestSlackMessage(t *testing.T) {
	srv, reqs, bodies := receiver(t, http.StatusOK)
	if err := sender().Send(t.Context(), Target{Type: kv1.NotifySlack, Address: srv.URL}, Message{Event: kv1.EventSyncFailed, Text: "web failed <b>"}); err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := json.Unmarshal((*bodies)[0], &got); err != nil || got["text"] != "web failed <b>" {
		t.Errorf("body %s (%v), want {\"text\": …}", (*bodies)[0], err)
	}
	if (*reqs)[0].Header.Get(SignatureHeader) != "" {
		t.Error("a Slack message carries no signature")
	}
}

func TestPermanence(t *testing.T) {
	for code, permanent := range map[int]bool{http.StatusNotFound: true, http.StatusTooManyRequests: false, http.StatusBadGateway: false} {
		srv, _, _ := receiver(t, code)
		err := sender().Send(t.Context(), Target{Type: kv1.NotifySlack, Address: srv.URL}, Message{})
		if err == nil || Permanent(err) != permanent {
			t.Errorf("HTTP %d: err = %v, permanent %v, want %v", code, err, Permanent(err), permanent)
		}
	}
	secretive := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte("internal-admin-panel v2"))
	}))
	defer secretive.Close()
	if err := sender().Send(t.Context(), Target{Type: kv1.NotifySlack, Address: secretive.URL}, Message{}); err == nil || strings.Contains(err.Error(), "internal-admin-panel") {
		t.Errorf("err = %v: want the status code without the receiver's answer", err)
	}
	err := sender().Send(t.Context(), Target{Type: kv1.NotifyWebhook, Address: "https://x.example"}, Message{})
	if !errors.Is(err, ErrConfig) || !Permanent(err) {
		t.Errorf("a webhook without hmacKey: %v, want ErrConfig", err)
	}
	strict := &Sender{HTTP: egress.NewClient(egress.Options{})}
	if err := strict.Send(t.Context(), Target{Type: kv1.NotifySlack, Address: "http://h.example"}, Message{}); !errors.Is(err, ErrConfig) {
		t.Errorf("http:// without --allow-insecure-http: %v, want ErrConfig", err)
	}
}

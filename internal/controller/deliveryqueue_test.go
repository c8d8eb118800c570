package controller

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/egress"
	"github.com/keyless-cd/keyless/internal/notify"
)

// TestSilentReceiversDoNotDelayAnotherTeam: team A's notification receivers
// accept connections and never answer, and A queues far more than its
// share. Team B's notification, queued after all of A's, is delivered
// while every one of A's is still hanging (A holds at most its share of the
// workers), and A cannot fill the queue so that B's messages are dropped.
func TestSilentReceiversDoNotDelayAnotherTeam(t *testing.T) {
	release := make(chan struct{})
	var hung atomic.Int64
	silent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hung.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); silent.Close() })
	var (
		mu            sync.Mutex
		bAt           = -1 // A's attempts finished when B's arrived
		aFinished     atomic.Int64
		bDeliveryDone = make(chan struct{})
	)
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if bAt < 0 {
			bAt = int(aFinished.Load())
			close(bDeliveryDone)
		}
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(ok.Close)

	sender := &notify.Sender{HTTP: egress.NewClient(egress.Options{AllowLoopback: true, Timeout: time.Minute}), AllowInsecureHTTP: true}
	type msg struct {
		ns, addr string
		n        int
	}
	q := newDeliveryQueue("test", logr.Discard(), func(ctx context.Context, m msg) error {
		err := sender.Send(ctx, notify.Target{Type: kv1.NotifySlack, Address: m.addr}, notify.Message{Event: kv1.EventSynced, Text: fmt.Sprint(m.n)})
		if m.ns == "team-a" {
			aFinished.Add(1)
		}
		return err
	}, func(error) bool { return true }, func(msg, error) {}, func(m msg) string { return m.ns })

	accepted := 0
	for i := range 2 * deliveryNamespaceLimit {
		if q.add(msg{ns: "team-a", addr: silent.URL + "/hook", n: i}) {
			accepted++
		}
	}
	if accepted != deliveryNamespaceLimit {
		t.Errorf("team A queued %d messages, want its limit %d", accepted, deliveryNamespaceLimit)
	}
	if !q.add(msg{ns: "team-b", addr: ok.URL + "/hook"}) {
		t.Fatal("team B's message was dropped: team A filled the queue")
	}
	go func() { _ = q.Start(t.Context()) }()

	select {
	case <-bDeliveryDone:
	case <-time.After(deliveryTimeout):
		t.Fatalf("team B's notification was not delivered while team A's receivers hang (%d of A's requests hanging)", hung.Load())
	}
	mu.Lock()
	defer mu.Unlock()
	if bAt != 0 {
		t.Errorf("team B's notification waited for %d of team A's attempts to end", bAt)
	}
	if n := hung.Load(); n > int64(deliveryNamespaceShare) {
		t.Errorf("team A held %d workers, its share is %d", n, deliveryNamespaceShare)
	}
}

package ui

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/watch"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

// TestLiveEventsSayChangedAndStale runs the hub over watches the test
// drives: a change is announced, a dropped watch turns the stream stale
// with the time it dropped, and the re-opened watch turns it live again.
func TestLiveEventsSayChangedAndStale(t *testing.T) {
	watches := make(chan *watch.FakeWatcher, 4)
	var mu sync.Mutex
	fail := false
	open := func(context.Context, string) (watch.Interface, error) {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			fail = false
			return nil, errors.New("connection refused")
		}
		w := watch.NewFake()
		watches <- w
		return w, nil
	}
	h := newHub(open, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go h.run(ctx, []string{"team-a"})
	srv := httptest.NewServer(http.HandlerFunc(h.serveEvents))
	defer srv.Close()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	events := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(res.Body)
		var ev string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				events <- ev + " " + strings.TrimPrefix(line, "data: ")
			}
		}
		close(events)
	}()
	next := func(want string) string {
		t.Helper()
		for {
			select {
			case got, ok := <-events:
				if !ok {
					t.Fatalf("the stream ended waiting for %q", want)
				}
				if strings.HasPrefix(got, want) {
					return got
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("no %q event", want)
			}
		}
	}

	next("state live")
	w := <-watches
	w.Modify(&kv1.Application{})
	next("changed")

	mu.Lock()
	fail = true // the first re-open fails too: still stale, retried
	mu.Unlock()
	dropped := time.Now().UTC().Truncate(time.Second)
	w.Stop()
	stale := next("state stale ")
	at, err := time.Parse(time.RFC3339, strings.TrimPrefix(stale, "state stale "))
	if err != nil || at.Before(dropped) {
		t.Fatalf("stale event %q does not carry the time the watch dropped (%s)", stale, dropped)
	}
	select { // re-opened after the backoff
	case <-watches:
	case <-time.After(10 * time.Second):
		t.Fatal("the dropped watch was not opened again")
	}
	next("state live")
}

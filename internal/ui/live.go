package ui

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

// allNamespaces is the hub's key for a cluster-wide watch.
const allNamespaces = ""

// Live states the browser shows.
const (
	stateLive  = "live"
	stateStale = "stale"
)

// watchFunc opens a watch of the Applications in namespace ("" for all).
type watchFunc func(ctx context.Context, namespace string) (watch.Interface, error)

// hub watches Applications as the viewer and tells every open page that
// something changed (the page then fetches itself again), and whether the
// watch is live or has dropped (stale).
type hub struct {
	open   watchFunc
	logger *slog.Logger

	mu    sync.Mutex
	subs  map[chan struct{}]bool
	down  map[string]bool // namespaces whose watch dropped and is being re-opened
	since time.Time       // when the first of them dropped
}

func newHub(open watchFunc, logger *slog.Logger) *hub {
	return &hub{open: open, logger: logger, subs: map[chan struct{}]bool{}, down: map[string]bool{}}
}

func (s *Server) watchApplications(ctx context.Context, namespace string) (watch.Interface, error) {
	var opts []client.ListOption
	if namespace != allNamespaces {
		opts = append(opts, client.InNamespace(namespace))
	}
	return s.apps.Watch(ctx, &kv1.ApplicationList{}, opts...)
}

// run watches each namespace of the server (or all) until ctx ends.
func (h *hub) run(ctx context.Context, namespaces []string) {
	var wg sync.WaitGroup
	for _, ns := range namespaces {
		wg.Go(func() { h.watchLoop(ctx, ns) })
	}
	wg.Wait()
}

// watchLoop keeps one watch open, re-opening it with backoff (1s doubling
// to 30s) when it drops. A namespace the viewer may not watch is not a
// drop: the page says the list is forbidden, and the watch is retried
// slowly in case a RoleBinding appears.
func (h *hub) watchLoop(ctx context.Context, ns string) {
	backoff := time.Second
	for ctx.Err() == nil {
		w, err := h.open(ctx, ns)
		switch {
		case err == nil:
			h.setDown(ns, false)
			backoff = time.Second
			h.drain(ctx, w)
			if ctx.Err() != nil {
				return
			}
			h.setDown(ns, true)
		case apierrors.IsForbidden(err):
			h.setDown(ns, false)
			backoff = 30 * time.Second
		default:
			h.logger.Info("watching Applications failed; retrying", "namespace", ns, "error", err.Error(), "retry", backoff.String())
			h.setDown(ns, true)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// drain forwards a watch's events until it ends or reports an error.
func (h *hub) drain(ctx context.Context, w watch.Interface) {
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.ResultChan():
			if !ok || ev.Type == watch.Error {
				return
			}
			h.notify()
		}
	}
}

func (h *hub) setDown(ns string, down bool) {
	h.mu.Lock()
	was := len(h.down) > 0
	if down {
		h.down[ns] = true
		if !was {
			h.since = time.Now()
		}
	} else {
		delete(h.down, ns)
	}
	changed := was != (len(h.down) > 0)
	h.mu.Unlock()
	if changed {
		h.notify()
	}
}

// state is stateLive, or stateStale with the time the watch dropped.
func (h *hub) state() (string, time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.down) > 0 {
		return stateStale, h.since
	}
	return stateLive, time.Time{}
}

// notify wakes every subscriber; a subscriber already woken stays so once
// (changes coalesce: the page fetches itself once for a burst).
func (h *hub) notify() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.subs {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

func (h *hub) subscribe() (chan struct{}, func()) {
	c := make(chan struct{}, 1)
	h.mu.Lock()
	h.subs[c] = true
	h.mu.Unlock()
	return c, func() {
		h.mu.Lock()
		delete(h.subs, c)
		h.mu.Unlock()
	}
}

// maxStreams bounds the open event streams (browser tabs) of one server.
const maxStreams = 64

// serveEvents is the server-sent event stream: "state" events (live or
// stale) and "changed" events, at most one per 250 ms; a comment every 15
// seconds keeps the connection open through proxies.
func (h *hub) serveEvents(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	h.mu.Lock()
	n := len(h.subs)
	h.mu.Unlock()
	if n >= maxStreams {
		http.Error(w, "too many open pages", http.StatusServiceUnavailable)
		return
	}
	c, unsubscribe := h.subscribe()
	defer unsubscribe()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	last := ""
	sendState := func() {
		st, since := h.state()
		if st == last {
			return
		}
		last = st
		data := st
		if st == stateStale {
			data = st + " " + since.UTC().Format(time.RFC3339)
		}
		_, _ = fmt.Fprintf(w, "event: state\ndata: %s\n\n", data)
	}
	sendState()
	flusher.Flush()
	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keepAlive.C:
			_, _ = fmt.Fprint(w, ": keep-alive\n\n")
		case <-c:
			sendState()
			_, _ = fmt.Fprint(w, "event: changed\ndata: 1\n\n")
			select {
			case <-r.Context().Done():
				return
			case <-time.After(250 * time.Millisecond):
			}
		}
		flusher.Flush()
	}
}

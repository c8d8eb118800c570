package webhook

import (
	"net/http"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// The Receiver's limits when its fields are zero.
const (
	// DefaultMaxConcurrent bounds the requests served at once: with MaxBody,
	// at most 32 MiB of bodies in memory.
	DefaultMaxConcurrent = 32
	// DefaultSourceRate and DefaultSourceBurst are each source's bucket: far
	// above a forge's pushes, far below a flood.
	DefaultSourceRate  rate.Limit = 10
	DefaultSourceBurst int        = 20
	// DefaultMaxSources bounds the sources remembered.
	DefaultMaxSources = 4096
	// ReplayWindow is how long a delivery ID or a signed body is remembered.
	ReplayWindow = time.Hour
	// MaxRemembered bounds the delivery IDs and body hashes remembered.
	MaxRemembered = 8192
)

// retryAfter is the Retry-After (seconds) of a 429 or 503.
const retryAfter = "1"

// init fills the zero limits with their defaults, once.
func (w *Receiver) init() {
	w.once.Do(func() {
		if w.MaxConcurrent <= 0 {
			w.MaxConcurrent = DefaultMaxConcurrent
		}
		if w.SourceRate <= 0 {
			w.SourceRate = DefaultSourceRate
		}
		if w.SourceBurst <= 0 {
			w.SourceBurst = DefaultSourceBurst
		}
		if w.MaxSources <= 0 {
			w.MaxSources = DefaultMaxSources
		}
		w.slots = make(chan struct{}, w.MaxConcurrent)
		w.sources = &sources{rate: w.SourceRate, burst: w.SourceBurst, max: w.MaxSources,
			buckets: map[netip.Prefix]*rate.Limiter{}, overflow: rate.NewLimiter(w.SourceRate, w.SourceBurst)}
	})
}

// sourceOf is the source a request is counted against: its IPv4 address,
// or its IPv6 address's /64 (one host usually holds a whole /64). Without an
// address (not a TCP listener), every request is one source.
func sourceOf(remoteAddr string) netip.Prefix {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Prefix{}
	}
	a := ap.Addr().Unmap()
	bits := a.BitLen()
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

// sources are the token buckets of the sources seen, at most max of them.
type sources struct {
	rate  rate.Limit
	burst int
	max   int

	mu      sync.Mutex
	buckets map[netip.Prefix]*rate.Limiter
	// overflow is shared by the new sources while the map is full of
	// sources still in use: many addresses buy one bucket, not many.
	overflow  *rate.Limiter
	lastSweep time.Time
}

// allow takes a token of src's bucket at now.
func (s *sources) allow(src netip.Prefix, now time.Time) bool {
	return s.bucket(src, now).AllowN(now, 1)
}

func (s *sources) bucket(src netip.Prefix, now time.Time) *rate.Limiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.buckets[src]; ok {
		return b
	}
	if len(s.buckets) >= s.max && now.Sub(s.lastSweep) >= time.Second {
		// A full bucket is as good as a new one: forget it. At most once a
		// second, so that many new sources do not each scan the map.
		s.lastSweep = now
		for k, b := range s.buckets {
			if b.TokensAt(now) >= float64(s.burst) {
				delete(s.buckets, k)
			}
		}
	}
	if len(s.buckets) >= s.max {
		return s.overflow
	}
	b := rate.NewLimiter(s.rate, s.burst)
	s.buckets[src] = b
	return b
}

// deliveries remembers, for ReplayWindow, the delivery IDs and signed
// bodies of verified requests (at most MaxRemembered), so a redelivered or
// replayed event triggers nothing.
type deliveries struct {
	mu  sync.Mutex
	ids map[string]time.Time
}

// repeated reports whether any of ids (under prefix) was seen within
// ReplayWindow of now, and remembers them all.
func (d *deliveries) repeated(now time.Time, prefix string, ids ...string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ids == nil {
		d.ids = map[string]time.Time{}
	}
	seen := false
	for _, id := range ids {
		if at, ok := d.ids[prefix+id]; ok && now.Sub(at) < ReplayWindow {
			seen = true
		}
	}
	for _, id := range ids {
		if len(d.ids) >= MaxRemembered {
			d.evict(now)
		}
		d.ids[prefix+id] = now
	}
	return seen
}

// evict forgets what is past ReplayWindow, or else the oldest entry.
func (d *deliveries) evict(now time.Time) {
	var oldest string
	var oldestAt time.Time
	for k, at := range d.ids {
		if now.Sub(at) >= ReplayWindow {
			delete(d.ids, k)
			continue
		}
		if oldest == "" || at.Before(oldestAt) {
			oldest, oldestAt = k, at
		}
	}
	if len(d.ids) >= MaxRemembered {
		delete(d.ids, oldest)
	}
}

// ServerOptions bound the connections of the webhook listener, which faces
// the internet: a client that sends slowly or never finishes is cut off.
// Zero fields take their defaults (NewServer).
type ServerOptions struct {
	// ReadHeaderTimeout bounds reading a request's headers. Default 5s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, headers and a body of
	// MaxBody (100 KiB/s at least). Default 10s.
	ReadTimeout time.Duration
	// WriteTimeout bounds a request from its headers to its answer written,
	// the trigger included. Default 20s.
	WriteTimeout time.Duration
	// IdleTimeout bounds a kept-alive connection between requests. Default 30s.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's headers. Default 16 KiB.
	MaxHeaderBytes int
}

// NewServer returns the http.Server of the webhook listener, serving h
// with o's limits.
func NewServer(h http.Handler, o ServerOptions) *http.Server {
	if o.ReadHeaderTimeout <= 0 {
		o.ReadHeaderTimeout = 5 * time.Second
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 10 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 20 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 30 * time.Second
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = 16 << 10
	}
	return &http.Server{Handler: h, ReadHeaderTimeout: o.ReadHeaderTimeout, ReadTimeout: o.ReadTimeout,
		WriteTimeout: o.WriteTimeout, IdleTimeout: o.IdleTimeout, MaxHeaderBytes: o.MaxHeaderBytes}
}

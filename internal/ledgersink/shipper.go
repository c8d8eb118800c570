package ledgersink

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"

	"github.com/keyless-cd/keyless/internal/ledger"
)

// Shipper copies a ledger file's records to a Store: at its start from the
// first record the store lacks, then, every Interval and when poked, what
// was appended since. A store that cannot be reached is retried; the file
// keeps every record meanwhile.
type Shipper struct {
	// Store receives the records.
	Store *Store
	// File is the ledger file (--ledger-file).
	File string
	// Interval between looks at the file when not poked. Default 30s.
	Interval time.Duration
	// Log receives shipping failures (never a record's content).
	Log logr.Logger

	poke    chan struct{}
	shipped atomic.Int64
}

// NewShipper returns a Shipper of file to store.
func NewShipper(store *Store, file string, log logr.Logger) *Shipper {
	return &Shipper{Store: store, File: file, Log: log, poke: make(chan struct{}, 1)}
}

// Poke makes the shipper look at the file now (after an append).
func (s *Shipper) Poke() {
	if s == nil {
		return
	}
	select {
	case s.poke <- struct{}{}:
	default:
	}
}

// Shipped is the last sequence number known to be in the store.
func (s *Shipper) Shipped() int64 { return s.shipped.Load() }

// NeedLeaderElection is true: only the controller that writes the ledger ships it.
func (s *Shipper) NeedLeaderElection() bool { return true }

// Start ships until ctx ends.
func (s *Shipper) Start(ctx context.Context) error {
	interval := s.Interval
	if interval <= 0 {
		interval = 30 * time.Second
	}
	backoff := time.Second
	var next int64
	var offset int64
	for {
		var err error
		if next == 0 {
			next, err = s.Store.Next(ctx)
			if err == nil {
				s.shipped.Store(next - 1)
			}
		}
		if err == nil {
			next, offset, err = s.shipFrom(ctx, next, offset)
		}
		wait := interval
		if err != nil && ctx.Err() == nil {
			s.Log.Error(err, "shipping the ledger", "store", s.Store.String(), "retryIn", backoff.String())
			wait, backoff = backoff, min(backoff*2, interval)
			if errors.Is(err, errRestart) {
				next, offset = 0, 0
			}
		} else {
			backoff = time.Second
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.poke:
		case <-time.After(wait):
		}
	}
}

// errRestart: the file is not what the shipper read (rotated, truncated):
// find the store's end again.
var errRestart = errors.New("the ledger file changed under the shipper")

// shipFrom ships the file's records from sequence next, reading from byte
// offset (where a record with a lower number ended, or 0), and returns the
// next sequence and offset to read from.
func (s *Shipper) shipFrom(ctx context.Context, next, offset int64) (int64, int64, error) {
	f, err := os.Open(s.File)
	if err != nil {
		return next, offset, err
	}
	defer func() { _ = f.Close() }()
	if fi, err := f.Stat(); err != nil {
		return next, offset, err
	} else if fi.Size() < offset {
		return next, offset, errRestart
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return next, offset, err
	}
	r := bufio.NewReaderSize(f, 64<<10)
	for {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return next, offset, nil // an unfinished last line waits for its newline
		}
		if err != nil {
			return next, offset, err
		}
		if len(line) > ledger.MaxLine {
			return next, offset, fmt.Errorf("%s: a line longer than %d bytes", s.File, ledger.MaxLine)
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		var rec struct {
			Seq int64 `json:"seq"`
		}
		if err := json.Unmarshal(line, &rec); err != nil {
			return next, offset, fmt.Errorf("%s: %w", s.File, err)
		}
		if rec.Seq >= next {
			if rec.Seq != next {
				return next, offset, fmt.Errorf("%s: record %d follows %d: %w", s.File, rec.Seq, next-1, errRestart)
			}
			if err := s.Store.Put(ctx, rec.Seq, line); err != nil {
				return next, offset, err
			}
			s.shipped.Store(rec.Seq)
			next++
		}
		offset += int64(len(line)) + 1
	}
}

package ledgersink

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/keyless-cd/keyless/internal/ledger"
	"github.com/keyless-cd/keyless/internal/objectstoretest"
)

func newStore(t *testing.T, srv objectstoretest.Server, url string) *Store {
	t.Helper()
	s, err := New(t.Context(), Options{URL: url, Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, AllowInsecureHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// appendRecords appends n sync records to the ledger file at path.
func appendRecords(t *testing.T, path string, key ed25519.PrivateKey, n int) {
	t.Helper()
	w, closer, err := ledger.Open(path, key)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = closer.Close() }()
	for i := range n {
		if err := w.Append(ledger.Record{Time: time.Now(), Kind: ledger.KindSync, Namespace: "shop", App: "web", Revision: fmt.Sprintf("%040d", i), Result: "Succeeded"}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestShipperCopiesTheLedger: against a real S3 server (versitygw), the
// shipper copies every record of the file, one object each, catches up
// after a restart from where the store ends, and the copy read back
// verifies; a record removed from the store, or edited, is named by
// verify; a record in the store that differs from the file is a conflict,
// never overwritten.
func TestShipperCopiesTheLedger(t *testing.T) {
	srv := objectstoretest.Start(t, "audit")
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "ledger.jsonl")
	appendRecords(t, file, key, 5)
	store := newStore(t, srv, "s3://audit/cluster-a/ledger")

	ship := func(until int64) {
		t.Helper()
		ctx := t.Context()
		sh := NewShipper(store, file, logr.Discard())
		sh.Interval = 50 * time.Millisecond
		done := make(chan struct{})
		runCtx, stop := contextWithCancel(ctx)
		go func() { _ = sh.Start(runCtx); close(done) }()
		deadline := time.Now().Add(20 * time.Second)
		for sh.Shipped() < until {
			if time.Now().After(deadline) {
				stop()
				<-done
				t.Fatalf("shipped %d of %d records", sh.Shipped(), until)
			}
			time.Sleep(20 * time.Millisecond)
		}
		stop()
		<-done
	}
	ship(5)
	if next, err := store.Next(t.Context()); err != nil || next != 6 {
		t.Fatalf("Next = %d, %v: want 6 after five records", next, err)
	}
	if _, err := os.Stat(filepath.Join(srv.Root, "audit", "cluster-a", "ledger", "00000000000000000003.json")); err != nil {
		t.Errorf("record 3 is not its own object: %v", err)
	}

	t.Log("a restart: the shipper ships what the store lacks, from where it ends")
	appendRecords(t, file, key, 4)
	ship(9)
	var copyOf bytes.Buffer
	if err := store.Records(t.Context(), &copyOf); err != nil {
		t.Fatal(err)
	}
	local, _ := os.ReadFile(file)
	if copyOf.String() != string(local) {
		t.Fatalf("the store's copy differs from the file:\n%s\nfile:\n%s", copyOf.String(), local)
	}
	if _, n, err := ledger.Verify(&copyOf, pub); err != nil || n != 9 {
		t.Fatalf("the copy verifies %d records: %v", n, err)
	}

	t.Log("a record that differs from the file is a conflict, not overwritten")
	lines := strings.Split(strings.TrimSpace(string(local)), "\n")
	if err := store.Put(t.Context(), 2, []byte(lines[2])); !errors.Is(err, ErrConflict) {
		t.Errorf("putting record 3's line as record 2: %v, want ErrConflict", err)
	}
	if err := store.Put(t.Context(), 2, []byte(lines[1])); err != nil {
		t.Errorf("putting record 2 again, unchanged: %v", err)
	}

	t.Log("tampering with the store's copy is named by verify")
	obj := filepath.Join(srv.Root, "audit", "cluster-a", "ledger", "00000000000000000004.json")
	data, err := os.ReadFile(obj)
	if err != nil {
		t.Fatal(err)
	}
	edited := bytes.Replace(data, []byte(`"Succeeded"`), []byte(`"Succeedex"`), 1)
	if err := os.WriteFile(obj, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	copyOf.Reset()
	if err := store.Records(t.Context(), &copyOf); err != nil {
		t.Fatal(err)
	}
	var broken *ledger.BrokenError
	if _, _, err := ledger.Verify(&copyOf, pub); !errors.As(err, &broken) || broken.Seq != 4 {
		t.Errorf("an edited record 4: %v, want record 4 named", err)
	}
	if err := os.Remove(obj); err != nil {
		t.Fatal(err)
	}
	copyOf.Reset()
	if err := store.Records(t.Context(), &copyOf); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ledger.Verify(&copyOf, pub); !errors.As(err, &broken) || !strings.Contains(err.Error(), "removed") {
		t.Errorf("a removed record 4: %v, want it named", err)
	}
}

// TestParseURL: sink URLs.
func TestParseURL(t *testing.T) {
	for raw, want := range map[string]string{"s3://b": "b|", "s3://b/p": "b|p/", "s3://b/p/q/": "b|p/q/"} {
		b, p, err := ParseURL(raw)
		if err != nil || b+"|"+p != want {
			t.Errorf("ParseURL(%q) = %q %q %v, want %s", raw, b, p, err, want)
		}
	}
	for _, raw := range []string{"https://b/p", "s3://", "s3:///p", "s3://b/../x"} {
		if _, _, err := ParseURL(raw); err == nil {
			t.Errorf("ParseURL(%q) accepted", raw)
		}
	}
}

func contextWithCancel(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithCancel(parent)
}

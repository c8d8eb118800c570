// Package ledger is keyless's tamper-evident record of changes (#39): one
// JSON line per sync (and, as they are recorded, approvals, overrides and
// pauses), each carrying the hash of the previous line and an ed25519
// signature by the controller's key, so a removed, edited or reordered
// record is found by Verify, which names the first broken one.
//
// The ledger is written to a file the operator chooses (the controller's
// --ledger-file, on a volume a namespace admin cannot reach) and shipped
// from there for long retention; `keyless evidence verify` checks a copy.
package ledger

import (
	"bufio"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// MaxLine bounds one record.
const MaxLine = 1 << 20

// Kinds of record.
const (
	// KindSync is a sync: what was applied, as whom, and its result.
	KindSync = "sync"
	// KindOverride is a closed sync window a person let a sync through
	// (keyless sync --override-window): By, Reason, Window; the sync's own
	// record follows it.
	KindOverride = "override"
	// KindPause is a pause of self-heal the controller saw begin (keyless
	// pause): By, Reason, Until.
	KindPause = "pause"
	// KindApproval is a revision the forge showed approved by people other
	// than its authors and merger (spec.source.verify.approvals): the
	// approvers and the pull/merge request, before the sync it let through.
	KindApproval = "approval"
)

// Record is one entry. Hash is the sha256 of the record's canonical JSON
// with Hash and Signature empty; Signature signs Hash; Prev is the
// previous record's Hash ("" for the first).
type Record struct {
	Seq       int64     `json:"seq"`
	Time      time.Time `json:"time"`
	Kind      string    `json:"kind"`
	Namespace string    `json:"namespace"`
	App       string    `json:"app"`
	Revision  string    `json:"revision,omitempty"`
	Author    string    `json:"author,omitempty"`
	Committer string    `json:"committer,omitempty"`
	Signer    string    `json:"signer,omitempty"`
	Trigger   string    `json:"trigger,omitempty"`
	Result    string    `json:"result,omitempty"`
	Error     string    `json:"error,omitempty"`
	// Deployer is the identity the objects were written as.
	Deployer string `json:"deployer,omitempty"`
	// Changes are "Kind/name action" of each object written.
	Changes        []string `json:"changes,omitempty"`
	ApprovedBy     string   `json:"approvedBy,omitempty"`
	ApprovalDigest string   `json:"approvalDigest,omitempty"`
	WindowOverride string   `json:"windowOverride,omitempty"`
	// Approvers and PullRequest: who approved the revision at the forge
	// and where (a sync, or an approval record of its own).
	Approvers   []string `json:"approvers,omitempty"`
	PullRequest string   `json:"pullRequest,omitempty"`
	// RenderedDigest is the sha256 of the objects the sync applied, as
	// rendered; DryRun the API server's dry run of them (Passed, Failed).
	RenderedDigest string `json:"renderedDigest,omitempty"`
	DryRun         string `json:"dryRun,omitempty"`
	// By, Reason, Window and Until describe an override or a pause (empty
	// in a sync's record, so older records hash as they did).
	By        string    `json:"by,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	Window    string    `json:"window,omitempty"`
	Until     time.Time `json:"until,omitzero"`
	Prev      string    `json:"prev"`
	Hash      string    `json:"hash"`
	Signature string    `json:"signature"`
}

// digest is the record's hash (Hash and Signature left out).
func (r Record) digest() (string, error) {
	r.Hash, r.Signature = "", ""
	raw, err := json.Marshal(r)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:]), nil
}

// Writer appends signed, chained records to w.
type Writer struct {
	mu   sync.Mutex
	w    io.Writer
	key  ed25519.PrivateKey
	prev string
	seq  int64
}

// NewWriter continues the chain whose last record is last (nil: a new
// ledger), writing to w and signing with key.
func NewWriter(w io.Writer, key ed25519.PrivateKey, last *Record) *Writer {
	lw := &Writer{w: w, key: key}
	if last != nil {
		lw.prev, lw.seq = last.Hash, last.Seq
	}
	return lw
}

// Append chains, signs and writes r (its Seq, Prev, Hash and Signature
// are set here).
func (lw *Writer) Append(r Record) error {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	r.Seq, r.Prev = lw.seq+1, lw.prev
	h, err := r.digest()
	if err != nil {
		return err
	}
	r.Hash = h
	r.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(lw.key, []byte(h)))
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if len(line) > MaxLine {
		return fmt.Errorf("ledger record %d is %d bytes (at most %d)", r.Seq, len(line), MaxLine)
	}
	if _, err := lw.w.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("writing ledger record %d: %w", r.Seq, err)
	}
	lw.seq, lw.prev = r.Seq, h
	return nil
}

// ErrBroken is returned (wrapped in a *BrokenError) by Verify.
var ErrBroken = errors.New("ledger broken")

// BrokenError names the first record that does not verify.
type BrokenError struct {
	// Line is its line (from 1); Seq its sequence number as written.
	Line   int
	Seq    int64
	Reason string
}

func (e *BrokenError) Error() string {
	return fmt.Sprintf("ledger broken at line %d (record %d): %s", e.Line, e.Seq, e.Reason)
}

func (e *BrokenError) Unwrap() error { return ErrBroken }

// Verify reads a ledger and checks every record's hash, signature (with
// pub), sequence and link to the one before; it returns the last record,
// how many were read, or a *BrokenError naming the first that fails.
func Verify(r io.Reader, pub ed25519.PublicKey) (last *Record, n int, err error) {
	return VerifyEach(r, pub, nil)
}

// VerifyEach is Verify calling each (when not nil) with every record that
// verified, in order, before the next is read: an export reads a ledger
// of years once, keeping only what it selects.
func VerifyEach(r io.Reader, pub ed25519.PublicKey, each func(Record)) (last *Record, n int, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), MaxLine+1)
	prev, seq := "", int64(0)
	for sc.Scan() {
		n++
		var rec Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return last, n - 1, &BrokenError{Line: n, Seq: seq + 1, Reason: "not a record: " + err.Error()}
		}
		broken := func(reason string) (*Record, int, error) {
			return last, n - 1, &BrokenError{Line: n, Seq: rec.Seq, Reason: reason}
		}
		h, err := rec.digest()
		switch {
		case err != nil:
			return broken(err.Error())
		case rec.Seq != seq+1:
			return broken(fmt.Sprintf("sequence %d follows %d: a record was removed or moved", rec.Seq, seq))
		case rec.Prev != prev:
			return broken("it does not link to the record before it: a record was removed, moved or edited")
		case rec.Hash != h:
			return broken("its content does not match its hash: it was edited")
		}
		sig, err := base64.StdEncoding.DecodeString(rec.Signature)
		if err != nil || !ed25519.Verify(pub, []byte(rec.Hash), sig) {
			return broken("its signature does not verify with the given public key")
		}
		prev, seq = rec.Hash, rec.Seq
		cp := rec
		last = &cp
		if each != nil {
			each(rec)
		}
	}
	if err := sc.Err(); err != nil {
		return last, n, &BrokenError{Line: n + 1, Seq: seq + 1, Reason: err.Error()}
	}
	return last, n, nil
}

// ParsePrivateKey reads an ed25519 private key in PKCS#8 PEM (`openssl
// genpkey -algorithm ed25519`).
func ParsePrivateKey(pemData []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(pemData)
	if block == nil {
		return nil, errors.New("not a PEM private key (want PKCS#8, e.g. openssl genpkey -algorithm ed25519)")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("not a PKCS#8 private key: %w", err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T key, want ed25519", k)
	}
	return key, nil
}

// ParsePublicKey reads an ed25519 public key in PKIX PEM (`openssl pkey
// -pubout`).
func ParsePublicKey(pemData []byte) (ed25519.PublicKey, error) {
	block, _ := pem.Decode(pemData)
	if block == nil {
		return nil, errors.New("not a PEM public key (want PKIX, e.g. openssl pkey -pubout)")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("not a PKIX public key: %w", err)
	}
	key, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("a %T key, want ed25519", k)
	}
	return key, nil
}

// Open continues the ledger at path (created when missing), after
// verifying what it holds: a broken ledger is not appended to.
func Open(path string, key ed25519.PrivateKey) (*Writer, io.Closer, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("opening the ledger: %w", err)
	}
	last, _, err := Verify(f, key.Public().(ed25519.PublicKey))
	if err != nil {
		_ = f.Close()
		return nil, nil, fmt.Errorf("the ledger %s does not verify, so it is not appended to (keep it as evidence, start a new file): %w", path, err)
	}
	return NewWriter(f, key, last), f, nil
}

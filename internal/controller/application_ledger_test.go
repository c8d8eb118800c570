package controller_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/evidence"
	"github.com/keyless-cd/keyless/internal/ledger"
	"github.com/keyless-cd/keyless/internal/ledgersink"
	"github.com/keyless-cd/keyless/internal/objectstoretest"
)

// TestLedger: with --ledger-file the controller appends a signed,
// chained record of each sync; `keyless evidence verify` passes on the
// file and names the first broken record once one byte is edited or a
// record removed; a restarted controller continues the chain. With
// --ledger-sink every record is also copied to a real S3 store
// (versitygw), from which `keyless evidence verify s3://…` reads and
// verifies the same records.
func TestLedger(t *testing.T) {
	e := newEnv(t)
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	e.ledgerFile, e.ledgerKey = filepath.Join(dir, "ledger.jsonl"), key
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	pubFile := filepath.Join(dir, "ledger.pub")
	if err := os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	s3 := objectstoretest.Start(t, "audit")
	e.ledgerSink = &ledgersink.Options{URL: "s3://audit/cluster-a", Endpoint: s3.Endpoint, AccessKey: s3.AccessKey, SecretKey: s3.SecretKey, AllowInsecureHTTP: true}
	revs := []string{e.push(map[string]string{"l/cm.yaml": configMapFile("l", "1")}, nil, "one")}
	time.Sleep(1100 * time.Millisecond)
	e.startController(5 * time.Second)
	e.dependentApp("l", "l")
	e.waitApp("l", "synced", time.Minute, func(a *kv1.Application) bool { return a.Status.LastAppliedRevision == revs[0] })
	revs = append(revs, e.push(map[string]string{"l/cm.yaml": configMapFile("l", "2")}, nil, "two"))
	e.waitApp("l", "synced", time.Minute, func(a *kv1.Application) bool { return a.Status.LastAppliedRevision == revs[1] })

	e.stopController()
	e.startController(5 * time.Second)
	revs = append(revs, e.push(map[string]string{"l/cm.yaml": configMapFile("l", "3")}, nil, "three"))
	e.waitApp("l", "synced after a restart", time.Minute, func(a *kv1.Application) bool { return a.Status.LastAppliedRevision == revs[2] })
	store, err := ledgersink.New(t.Context(), *e.ledgerSink)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the three records shipped to the object store", func() (bool, string) {
		next, err := store.Next(t.Context())
		return err == nil && next == 4, fmt.Sprintf("next %d, %v", next, err)
	})
	e.stopController()
	t.Setenv("AWS_ACCESS_KEY_ID", s3.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s3.SecretKey)
	if code, out, errOut := e.keyless("", "evidence", "verify", "s3://audit/cluster-a", "--endpoint", s3.Endpoint, "--allow-insecure-http", "--public-key", pubFile); code != 0 ||
		!strings.Contains(out, "3 record(s) verified") {
		t.Fatalf("evidence verify of the object store's copy: %d\n%s%s", code, out, errOut)
	}
	if err := os.Remove(filepath.Join(s3.Root, "audit", "cluster-a", "00000000000000000002.json")); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := e.keyless("", "evidence", "verify", "s3://audit/cluster-a", "--endpoint", s3.Endpoint, "--allow-insecure-http", "--public-key", pubFile); code == 0 ||
		!strings.Contains(errOut, "record 3") || !strings.Contains(errOut, "removed") {
		t.Errorf("evidence verify of the copy with record 2 removed: %d\n%s%s", code, out, errOut)
	}
	// A person's edit outside keyless (the controller is stopped: not reverted).
	cm := &corev1.ConfigMap{}
	if err := e.admin.Get(t.Context(), client.ObjectKey{Namespace: appNS, Name: "l"}, cm); err != nil {
		t.Fatal(err)
	}
	cm.Data["v"] = "by hand"
	if err := e.admin.Update(t.Context(), cm); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := e.keyless("", "evidence", "verify", e.ledgerFile, "--public-key", pubFile)
	if code != 0 || !strings.Contains(out, "3 record(s) verified") {
		t.Fatalf("evidence verify: %d\n%s%s", code, out, errOut)
	}
	data, err := os.ReadFile(e.ledgerFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range revs {
		if !bytes.Contains(data, []byte(r)) {
			t.Errorf("the ledger has no record of %s", r)
		}
	}
	exportedWithAuditLog(t, e, pubFile, len(revs))
	recordsWhatWasApplied(t, e, data)
	lines := strings.SplitAfter(string(data), "\n")
	for name, tampered := range map[string]string{
		"one byte edited":  strings.Replace(string(data), `"Succeeded"`, `"Succeedex"`, 1),
		"a record removed": lines[0] + strings.Join(lines[2:], ""),
	} {
		bad := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		if err := os.WriteFile(bad, []byte(tampered), 0o600); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := e.keyless("", "evidence", "verify", bad, "--public-key", pubFile)
		if code == 0 || !strings.Contains(errOut, "ledger broken at line") {
			t.Errorf("%s: evidence verify %d\n%s%s", name, code, out, errOut)
		}
		outDir := filepath.Join(dir, "pack-"+strings.ReplaceAll(name, " ", "-"))
		code, out, errOut = e.keyless("", "evidence", "export", bad, "--public-key", pubFile, "--output-dir", outDir)
		if _, err := os.Stat(outDir); code == 0 || !strings.Contains(errOut, "does not verify, so nothing is exported") || err == nil {
			t.Errorf("%s: evidence export of a broken ledger: %d\n%s%s", name, code, out, errOut)
		}
	}
}

// exportedWithAuditLog: `keyless evidence export` with the API server's
// own audit log accounts for every write in the Application's namespace:
// each one made as the deployer is matched with the sync record that
// lists its object (counted independently from the audit log here), and
// the person's edit is listed as a change outside keyless.
func exportedWithAuditLog(t *testing.T, e *env, pubFile string, syncs int) {
	t.Helper()
	outDir := filepath.Join(t.TempDir(), "pack")
	code, out, errOut := e.keyless("", "evidence", "export", e.ledgerFile, "--public-key", pubFile, "-n", appNS,
		"--from", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), "--apiserver-audit-log", e.cluster.AuditLogPath, "--output-dir", outDir)
	if code != 0 {
		t.Fatalf("evidence export: %d\n%s%s", code, out, errOut)
	}
	raw, err := os.ReadFile(filepath.Join(outDir, "evidence.json"))
	if err != nil {
		t.Fatal(err)
	}
	var pack evidence.Pack
	if err := json.Unmarshal(raw, &pack); err != nil {
		t.Fatal(err)
	}
	deployer := "system:serviceaccount:" + appNS + ":" + kv1.DefaultServiceAccountName
	var byDeployer int
	for _, w := range e.cluster.Writes(t, appNS) {
		if w.Actor() == deployer && w.ResponseStatus != nil && w.ResponseStatus.Code < 300 {
			byDeployer++
		}
	}
	a := pack.Audit
	if a == nil || len(pack.Changes) != syncs || byDeployer == 0 || a.Matched != byDeployer || len(a.WithoutRecord) != 0 {
		t.Fatalf("pack: %d changes (want %d), audit %+v; the deployer wrote %d times in %s", len(pack.Changes), syncs, a, byDeployer, appNS)
	}
	for _, c := range pack.Changes {
		if c.Result == kv1.SyncResultSucceeded && len(c.Objects) > 0 && len(c.Writes) == 0 {
			t.Errorf("change %d (%s, %v) has no write of the API server", c.Seq, c.Revision, c.Objects)
		}
		if c.WrittenBy == "" || c.AppliedAs != deployer || len(c.Controls) == 0 {
			t.Errorf("change %d does not say who wrote and applied it or which controls: %+v", c.Seq, c)
		}
	}
	var hand bool
	for _, w := range a.Outside {
		hand = hand || (w.Resource == "configmaps" && w.Name == "l" && w.Verb == "update" && !strings.HasPrefix(w.Identity(), "system:serviceaccount:"))
	}
	if !hand {
		t.Errorf("the edit by hand is not among the writes outside keyless: %+v", a.Outside)
	}
	report, err := os.ReadFile(filepath.Join(outDir, "report.md"))
	if err != nil || !bytes.Contains(report, []byte("## Writes outside keyless")) || !bytes.Contains(report, []byte(kv1.ShortSHA(pack.Changes[0].Revision))) {
		t.Errorf("report.md: %v\n%s", err, report)
	}
}

// withLedger gives e's next controller a ledger with a fresh key; read
// returns its records, every one verified with the key.
func withLedger(t *testing.T, e *env) (read func() []ledger.Record) {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	e.ledgerFile, e.ledgerKey = filepath.Join(t.TempDir(), "ledger.jsonl"), key
	return func() []ledger.Record {
		t.Helper()
		f, err := os.Open(e.ledgerFile)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = f.Close() }()
		var out []ledger.Record
		if _, _, err := ledger.VerifyEach(f, pub, func(r ledger.Record) { out = append(out, r) }); err != nil {
			t.Fatal(err)
		}
		return out
	}
}

// ledgerRecord is the last record of kind about app in records, or nil.
func ledgerRecord(records []ledger.Record, kind, app string) *ledger.Record {
	for i := len(records) - 1; i >= 0; i-- {
		if records[i].Kind == kind && records[i].App == app {
			return &records[i]
		}
	}
	return nil
}

// recordsWhatWasApplied: the last sync's ledger record carries the
// rendered digest, the dry run's outcome, and the UID and resourceVersion
// of the object it wrote — the live object's UID.
func recordsWhatWasApplied(t *testing.T, e *env, data []byte) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	var rec ledger.Record
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rec); err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{}
	if err := e.admin.Get(t.Context(), client.ObjectKey{Namespace: appNS, Name: "l"}, cm); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rec.RenderedDigest, "sha256:") || rec.DryRun != kv1.DryRunPassed ||
		len(rec.Changes) != 1 || !strings.Contains(rec.Changes[0], "uid="+string(cm.UID)+" resourceVersion=") {
		t.Errorf("the last sync's record %+v: want the rendered digest, the dry run passed and ConfigMap/l's UID %s", rec, cm.UID)
	}
}

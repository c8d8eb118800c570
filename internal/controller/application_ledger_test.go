package controller_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

// TestLedger: with --ledger-file the controller appends a signed,
// chained record of each sync; `keyless evidence verify` passes on the
// file and names the first broken record once one byte is edited or a
// record removed; a restarted controller continues the chain.
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
	e.stopController()

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
	}
}

package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyless-cd/keyless/internal/sopsfile/sopstest"
)

const cliSecret = `apiVersion: v1
kind: Secret
metadata:
  name: db
stringData:
  password: cli-plaintext
`

// TestSecretEncryptDecryptEditRender: a team encrypts a Secret with
// `keyless secret encrypt`, reads it back, edits it in $EDITOR, and renders
// the directory with its key: masked unless --show-secrets.
func TestSecretEncryptDecryptEditRender(t *testing.T) {
	ctx := t.Context()
	k := sopstest.NewKey(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "team.agekey")
	if err := os.WriteFile(keyFile, k.File, 0o600); err != nil {
		t.Fatal(err)
	}
	deploy := filepath.Join(dir, "deploy")
	if err := os.MkdirAll(deploy, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(deploy, "secret.yaml")
	if err := os.WriteFile(file, []byte(cliSecret), 0o644); err != nil {
		t.Fatal(err)
	}

	if code, _, errOut := run(ctx, t, "secret", "encrypt", "--age", k.Recipient, file, "--in-place"); code != 0 {
		t.Fatalf("encrypt: exit %d: %s", code, errOut)
	}
	enc := readTestFile(t, file)
	if strings.Contains(enc, "cli-plaintext") || !strings.Contains(enc, "password: ENC[") || !strings.Contains(enc, "name: db") {
		t.Fatalf("encrypted file:\n%s", enc)
	}
	if code, _, errOut := run(ctx, t, "secret", "encrypt", "--age", k.Recipient, file); code == 0 || !strings.Contains(errOut, "already SOPS-encrypted") {
		t.Errorf("encrypting twice: exit %d, stderr %q", code, errOut)
	}

	code, out, errOut := run(ctx, t, "secret", "decrypt", "--decryption-key-file", keyFile, file)
	if code != 0 || !strings.Contains(out, "password: cli-plaintext") {
		t.Fatalf("decrypt: exit %d, out %q, stderr %q", code, out, errOut)
	}
	other := sopstest.NewKey(t)
	otherFile := filepath.Join(dir, "other.agekey")
	_ = os.WriteFile(otherFile, other.File, 0o600)
	if code, _, errOut := run(ctx, t, "secret", "decrypt", "--decryption-key-file", otherFile, file); code == 0 || !strings.Contains(errOut, k.Recipient) || !strings.Contains(errOut, other.Recipient) {
		t.Errorf("decrypt with another key: exit %d, stderr %q (want both recipients named)", code, errOut)
	}

	t.Setenv("VISUAL", "")
	t.Setenv("EDITOR", "sed -i s/cli-plaintext/edited-value/")
	if code, _, errOut := run(ctx, t, "secret", "edit", "--decryption-key-file", keyFile, file); code != 0 {
		t.Fatalf("edit: exit %d: %s", code, errOut)
	}
	if edited := readTestFile(t, file); strings.Contains(edited, "edited-value") || strings.Contains(edited, "cli-plaintext") {
		t.Fatalf("edited file holds plaintext:\n%s", edited)
	}
	t.Setenv(sopsAgeKeyFileEnv, keyFile) // the sops CLI's variable is the default key file
	if code, out, _ := run(ctx, t, "secret", "decrypt", file); code != 0 || !strings.Contains(out, "edited-value") {
		t.Fatalf("decrypt after edit: exit %d, out %q", code, out)
	}

	code, out, errOut = run(ctx, t, "render", deploy, "--root", dir)
	if code != 0 || strings.Contains(out, "edited-value") || !strings.Contains(out, "password: '***'") || !strings.Contains(errOut, "decrypted 1 SOPS files") {
		t.Errorf("render: exit %d, out %q, stderr %q: want the value masked", code, out, errOut)
	}
	if code, out, _ := run(ctx, t, "render", deploy, "--root", dir, "--show-secrets"); code != 0 || !strings.Contains(out, "edited-value") {
		t.Errorf("render --show-secrets: exit %d, out %q", code, out)
	}
	t.Setenv(sopsAgeKeyFileEnv, "")
	if code, _, errOut := run(ctx, t, "render", deploy, "--root", dir); code == 0 || !strings.Contains(errOut, "deploy/secret.yaml is SOPS-encrypted") {
		t.Errorf("render without a key: exit %d, stderr %q", code, errOut)
	}
}

func readTestFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

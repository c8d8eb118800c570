package sopsfile

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// sopsEnv names the sops CLI binary (`make test` builds bin/tools/sops
// from SOPS's own module, hack/tools/go.mod).
const sopsEnv = "KEYLESS_SOPS"

// sopsCLI runs the real sops CLI with the age key file, isolated from the
// user's configuration; it returns stdout.
func sopsCLI(t *testing.T, keyFile string, args ...string) []byte {
	t.Helper()
	bin := os.Getenv(sopsEnv)
	if bin == "" {
		t.Fatalf("no sops CLI: run `make test` (it builds bin/tools/sops) or set %s", sopsEnv)
	}
	cmd := exec.CommandContext(t.Context(), bin, args...)
	home := t.TempDir()
	cmd.Dir = home
	cmd.Env = []string{"HOME=" + home, "SOPS_AGE_KEY_FILE=" + keyFile, "PATH=" + os.Getenv("PATH")}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("sops %s: %v: %s", strings.Join(args, " "), err, errOut.String())
	}
	return out.Bytes()
}

// TestInteropWithTheSopsCLI: what keyless encrypts, the sops CLI decrypts;
// what the sops CLI encrypts (YAML with Flux's encrypted_regex, dotenv),
// keyless decrypts.
func TestInteropWithTheSopsCLI(t *testing.T) {
	id, keyData := newIdentity(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "keys.txt")
	if err := os.WriteFile(keyFile, keyData, 0o600); err != nil {
		t.Fatal(err)
	}
	keys := keysOf(t, map[string][]byte{"k.agekey": keyData})

	enc, err := Encrypt("secret.yaml", []byte(secretYAML), EncryptOptions{AgeRecipients: []string{id.Recipient().String()}})
	if err != nil {
		t.Fatal(err)
	}
	encFile := filepath.Join(dir, "keyless.enc.yaml")
	if err := os.WriteFile(encFile, enc, 0o600); err != nil {
		t.Fatal(err)
	}
	if out := sopsCLI(t, keyFile, "--decrypt", encFile); !bytes.Contains(out, []byte("password: hunter2-plaintext")) {
		t.Errorf("sops --decrypt of keyless's file:\n%s", out)
	}

	for name, plain := range map[string]string{"secret.yaml": secretYAML, "app.env": "PASSWORD=hunter2-plaintext\n"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(plain), 0o600); err != nil {
			t.Fatal(err)
		}
		args := []string{"--encrypt", "--age", id.Recipient().String()}
		if FormatOf(name) == FormatYAML {
			args = append(args, "--encrypted-regex", DefaultEncryptedRegex)
		}
		byCLI := sopsCLI(t, keyFile, append(args, p)...)
		if !IsEncrypted(name, byCLI) {
			t.Fatalf("IsEncrypted is false for the sops CLI's %s:\n%s", name, byCLI)
		}
		out, err := Decrypt(name, byCLI, keys)
		if err != nil {
			t.Fatalf("decrypting the sops CLI's %s: %v", name, err)
		}
		if !bytes.Contains(out, []byte("hunter2-plaintext")) {
			t.Errorf("keyless decrypted the sops CLI's %s to:\n%s", name, out)
		}
	}
}

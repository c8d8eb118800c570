package sopsfile

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"filippo.io/age"
)

const secretYAML = `apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: team-a
stringData:
  password: hunter2-plaintext
`

// newIdentity returns an age identity and its key file content.
func newIdentity(t *testing.T) (*age.X25519Identity, []byte) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id, []byte("# created: test\n# public key: " + id.Recipient().String() + "\n" + id.String() + "\n")
}

func keysOf(t *testing.T, files map[string][]byte) *Keys {
	t.Helper()
	k, err := ParseKeys(files)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestEncryptDecryptRoundTripEveryFormat(t *testing.T) {
	id, keyFile := newIdentity(t)
	k := keysOf(t, map[string][]byte{"identity.agekey": keyFile, "README": []byte("ignored")})
	for name, plain := range map[string]string{
		"secret.yaml": secretYAML,
		"values.json": `{"db":{"password":"hunter2-plaintext"}}`,
		"app.env":     "PASSWORD=hunter2-plaintext\n",
		"app.ini":     "[db]\npassword = hunter2-plaintext\n",
		"token.txt":   "hunter2-plaintext",
	} {
		t.Run(name, func(t *testing.T) {
			enc, err := Encrypt(name, []byte(plain), EncryptOptions{AgeRecipients: []string{id.Recipient().String()}, EncryptAll: name == "values.json"})
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(enc, []byte("hunter2")) {
				t.Fatalf("ciphertext holds the plaintext:\n%s", enc)
			}
			if !IsEncrypted(name, enc) {
				t.Fatalf("IsEncrypted is false for sops output:\n%s", enc)
			}
			if IsEncrypted(name, []byte(plain)) {
				t.Fatal("IsEncrypted is true for the plaintext")
			}
			out, err := Decrypt(name, enc, k)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(out, []byte("hunter2-plaintext")) {
				t.Fatalf("decrypted:\n%s", out)
			}
		})
	}
}

func TestEncryptYAMLLeavesMetadataReadable(t *testing.T) {
	id, _ := newIdentity(t)
	enc, err := Encrypt("s.yaml", []byte(secretYAML), EncryptOptions{AgeRecipients: []string{id.Recipient().String()}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kind: Secret", "name: db", "password: ENC[", "encrypted_regex: ^(data|stringData)$", id.Recipient().String()} {
		if !strings.Contains(string(enc), want) {
			t.Errorf("missing %q in\n%s", want, enc)
		}
	}
}

func TestDecryptWithTheWrongKeyNamesFileAndRecipients(t *testing.T) {
	owner, _ := newIdentity(t)
	other, otherFile := newIdentity(t)
	enc, err := Encrypt("s.yaml", []byte(secretYAML), EncryptOptions{AgeRecipients: []string{owner.Recipient().String()}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Decrypt("deploy/s.yaml", enc, keysOf(t, map[string][]byte{"k.agekey": otherFile}))
	if !errors.Is(err, ErrNoMatchingKey) {
		t.Fatalf("err = %v, want ErrNoMatchingKey", err)
	}
	msg := err.Error()
	for _, want := range []string{"deploy/s.yaml", owner.Recipient().String(), other.Recipient().String()} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not name %s", msg, want)
		}
	}
	if strings.Contains(msg, "AGE-SECRET-KEY") || strings.Contains(msg, "hunter2") {
		t.Errorf("error leaks a secret: %s", msg)
	}
	_, err = Decrypt("s.yaml", enc, nil)
	if !errors.Is(err, ErrEncrypted) {
		t.Fatalf("no keys: err = %v, want ErrEncrypted", err)
	}
}

func TestDecryptRefusesATamperedFile(t *testing.T) {
	id, keyFile := newIdentity(t)
	k := keysOf(t, map[string][]byte{"k.agekey": keyFile})
	enc, err := Encrypt("s.yaml", []byte(secretYAML), EncryptOptions{AgeRecipients: []string{id.Recipient().String()}})
	if err != nil {
		t.Fatal(err)
	}
	// An unencrypted value changed: the MAC covers it.
	renamed := bytes.Replace(enc, []byte("name: db"), []byte("name: dc"), 1)
	if _, err := Decrypt("s.yaml", renamed, k); !errors.Is(err, ErrMAC) {
		t.Fatalf("edited metadata: err = %v, want ErrMAC", err)
	}
	// An encrypted value swapped for one of another file with another key.
	other, err := Encrypt("s.yaml", []byte(strings.Replace(secretYAML, "hunter2", "hunter3", 1)), EncryptOptions{AgeRecipients: []string{id.Recipient().String()}})
	if err != nil {
		t.Fatal(err)
	}
	swapped := append([]byte(nil), enc...)
	swapped = bytes.Replace(swapped, encValue(t, enc), encValue(t, other), 1)
	if _, err := Decrypt("s.yaml", swapped, k); !errors.Is(err, ErrMAC) {
		t.Fatalf("swapped value: err = %v, want ErrMAC", err)
	}
}

// encValue returns the first ENC[…] value of a SOPS file.
func encValue(t *testing.T, data []byte) []byte {
	t.Helper()
	i := bytes.Index(data, []byte("ENC["))
	j := bytes.IndexByte(data[i:], ']')
	if i < 0 || j < 0 {
		t.Fatalf("no ENC value in %s", data)
	}
	return data[i : i+j+1]
}

func TestReencryptKeepsRecipientsAndChangesValues(t *testing.T) {
	id, keyFile := newIdentity(t)
	k := keysOf(t, map[string][]byte{"k.agekey": keyFile})
	enc, err := Encrypt("s.yaml", []byte(secretYAML), EncryptOptions{AgeRecipients: []string{id.Recipient().String()}})
	if err != nil {
		t.Fatal(err)
	}
	edited, err := Reencrypt("s.yaml", enc, []byte(strings.Replace(secretYAML, "hunter2-plaintext", "rotated-value", 1)), k)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Decrypt("s.yaml", edited, k)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte("rotated-value")) || bytes.Contains(edited, []byte("rotated-value")) {
		t.Fatalf("edited file:\n%s\ndecrypted:\n%s", edited, out)
	}
}

func TestParseKeysRefusesBadEntriesWithoutQuotingThem(t *testing.T) {
	_, err := ParseKeys(map[string][]byte{"bad.agekey": []byte("AGE-SECRET-KEY-1NOTAKEYATALLBUTSECRETLOOKING\n")})
	if !errors.Is(err, ErrKeys) || !strings.Contains(err.Error(), "bad.agekey") || strings.Contains(err.Error(), "NOTAKEY") {
		t.Fatalf("err = %v", err)
	}
	if _, err := ParseKeys(map[string][]byte{"other": []byte("x")}); !errors.Is(err, ErrKeys) {
		t.Fatalf("no key entry: err = %v", err)
	}
	k := keysOf(t, map[string][]byte{"a.agekey": mustKeyFile(t)})
	if s := k.String(); strings.Contains(s, "AGE-SECRET") || !strings.Contains(s, "1 keys") {
		t.Fatalf("String() = %q", s)
	}
}

func mustKeyFile(t *testing.T) []byte {
	_, f := newIdentity(t)
	return f
}

func TestIsEncryptedNearMisses(t *testing.T) {
	for name, data := range map[string]string{
		"plain.yaml":   "apiVersion: v1\nkind: ConfigMap\ndata:\n  sops: mac\n",
		"nested.yaml":  "spec:\n  sops:\n    mac: x\n",
		"scalar.yaml":  "sops: mac\n",
		"list.json":    `[{"sops":{"mac":"x"}}]`,
		"comment.env":  "# sops_mac=x\n",
		"section.ini":  "[other]\nmac = sops\n",
		"binary.bin":   "sops mac",
		"invalid.yaml": "sops: {mac: [",
	} {
		if IsEncrypted(name, []byte(data)) {
			t.Errorf("%s: IsEncrypted = true", name)
		}
	}
	for name, data := range map[string]string{
		"second-doc.yaml": "kind: ConfigMap\n---\nkind: Secret\nsops:\n  mac: ENC[x]\n",
		"obj.json":        `{"data":"x","sops":{"mac":"x"}}`,
		"a.env":           "A=ENC[x]\nsops_mac=ENC[x]\n",
		"a.ini":           "[sops]\nmac = ENC[x]\n",
	} {
		if !IsEncrypted(name, []byte(data)) {
			t.Errorf("%s: IsEncrypted = false", name)
		}
	}
}

package audit

import (
	"fmt"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"

	"github.com/keyless-cd/keyless/internal/sopsfile/sopstest"
)

// TestSecretsInGit: a plaintext Secret is KL040 (high), a committed age or
// OpenPGP private key KL041 (critical); a SOPS-encrypted Secret,
// placeholders, templates, public keys and code naming the key format are not.
func TestSecretsInGit(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	ent, err := openpgp.NewEntity("t", "", "t@keyless.invalid", nil)
	if err != nil {
		t.Fatal(err)
	}
	var pgpKey strings.Builder
	w, _ := armor.Encode(&pgpKey, openpgp.PrivateKeyType, nil)
	_ = ent.SerializePrivate(w, nil)
	_ = w.Close()
	encrypted := sopstest.Encrypt(t, sopstest.NewKey(t), "s.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {password: hunter2}\n")

	for _, c := range []struct {
		name, file, data string
		want             string // "RULE:line" or ""
	}{
		{"stringData", "deploy/db.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData:\n  password: hunter2\n", "KL040:5"},
		{"data", "deploy/db.yaml", "kind: ConfigMap\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: db}\ndata:\n  password: aHVudGVyMg==\n", "KL040:7"},
		{"age key in a note", "notes/keys.txt", "# public key: " + id.Recipient().String() + "\n" + id.String() + "\n", "KL041:2"},
		{"age key in a Secret manifest", "deploy/sops-age.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: sops-age}\nstringData:\n  age.agekey: " + id.String() + "\n", "KL040:5,KL041:5"},
		{"OpenPGP key", "keys/team.asc", pgpKey.String(), "KL041:1"},

		{"SOPS-encrypted Secret", "deploy/db.yaml", string(encrypted), ""},
		{"placeholders", "deploy/db.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData:\n  password: ${DB_PASSWORD}\n  user: \"\"\n", ""},
		{"helm template", "chart/templates/s.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData:\n  password: \"{{ .Values.password }}\"\n", ""},
		{"no values", "deploy/db.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\ntype: Opaque\n", ""},
		{"a ConfigMap", "deploy/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  password: hunter2\n", ""},
		{"another API's Secret", "deploy/x.yaml", "apiVersion: example.com/v1\nkind: Secret\nmetadata: {name: x}\ndata: {a: b}\n", ""},
		{"an age public key", "docs/keys.md", "Encrypt for " + id.Recipient().String() + "\n", ""},
		{"a truncated age key", "docs/keys.md", "AGE-SECRET-KEY-1NOTAKEY\n", ""},
		{"code naming the armor header", "keys.go", "if bytes.Contains(data, []byte(\"-----BEGIN PGP PRIVATE KEY BLOCK-----\")) {\n", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, f := range ScanFile(c.file, []byte(c.data)) {
				got = append(got, fmt.Sprintf("%s:%d", f.Rule, f.Line))
				if strings.Contains(f.What, "hunter2") || strings.Contains(f.What, id.String()) {
					t.Errorf("the finding quotes the secret: %s", f.What)
				}
			}
			if want := c.want; strings.Join(got, ",") != want {
				t.Errorf("findings %v, want %q", got, want)
			}
		})
	}
}

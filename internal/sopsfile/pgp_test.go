package sopsfile

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/getsops/sops/v3"
	"github.com/getsops/sops/v3/pgp"
)

// TestDecryptWithAnOpenPGPKey decrypts a file whose data key is encrypted
// for an OpenPGP key only, given as an armored *.asc entry, in memory (no
// gpg, no keyring on disk).
func TestDecryptWithAnOpenPGPKey(t *testing.T) {
	ent, err := openpgp.NewEntity("keyless test", "", "test@keyless.invalid", nil)
	if err != nil {
		t.Fatal(err)
	}
	var priv bytes.Buffer
	w, err := armor.Encode(&priv, openpgp.PrivateKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ent.SerializePrivate(w, nil); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()

	// Encrypt for an age key, then move the data key to the OpenPGP key.
	id, ageFile := newIdentity(t)
	enc, err := Encrypt("s.yaml", []byte(secretYAML), EncryptOptions{AgeRecipients: []string{id.Recipient().String()}})
	if err != nil {
		t.Fatal(err)
	}
	tree, err := open("s.yaml", enc, keysOf(t, map[string][]byte{"a.agekey": ageFile}))
	if err != nil {
		t.Fatal(err)
	}
	var msg bytes.Buffer
	aw, err := armor.Encode(&msg, "PGP MESSAGE", nil)
	if err != nil {
		t.Fatal(err)
	}
	pw, err := openpgp.Encrypt(aw, []*openpgp.Entity{ent}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = pw.Write(tree.Metadata.DataKey)
	_ = pw.Close()
	_ = aw.Close()
	key := pgp.NewMasterKeyFromFingerprint(fmt.Sprintf("%X", ent.PrimaryKey.Fingerprint))
	key.EncryptedKey = msg.String()
	tree.Metadata.KeyGroups = []sops.KeyGroup{{key}}
	pgpOnly, err := seal("s.yaml", tree, tree.Metadata.DataKey)
	if err != nil {
		t.Fatal(err)
	}

	out, err := Decrypt("s.yaml", pgpOnly, keysOf(t, map[string][]byte{"team.asc": priv.Bytes()}))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte("hunter2-plaintext")) {
		t.Fatalf("decrypted:\n%s", out)
	}
	if _, err := Decrypt("s.yaml", pgpOnly, keysOf(t, map[string][]byte{"a.agekey": ageFile})); err == nil {
		t.Fatal("the age key decrypted a file encrypted for the OpenPGP key only")
	}
}

package sopsfile

import (
	"fmt"
	"slices"
	"time"

	"github.com/getsops/sops/v3"
	"github.com/getsops/sops/v3/aes"
	sopsage "github.com/getsops/sops/v3/age"
	"github.com/getsops/sops/v3/keys"
	"github.com/getsops/sops/v3/keyservice"
	"github.com/getsops/sops/v3/pgp"
)

// Bounds on a file's key metadata (what SOPS itself writes is far below).
const (
	maxKeyGroups = 16
	maxFileKeys  = 64
)

// Decrypt decrypts data, the SOPS file called name (its format is chosen
// by the name), with keys, checks its MAC, and returns the plaintext in the
// same format. The plaintext exists only in the returned slice. Errors are
// *DecryptError naming the file and, for a key that does not match, the
// file's recipients and the keys tried; never a value.
func Decrypt(name string, data []byte, keys *Keys) (out []byte, err error) {
	defer recoverFormat(name, &err)
	tree, err := open(name, data, keys)
	if err != nil {
		return nil, err
	}
	out, err = FormatOf(name).store().EmitPlainFile(tree.Branches)
	if err != nil {
		return nil, &DecryptError{File: name, Err: ErrFormat, Detail: "writing the plaintext: " + err.Error()}
	}
	return out, nil
}

// open loads and decrypts the tree of the SOPS file called name, with its
// MAC checked and its data key recovered (kept in tree.Metadata.DataKey).
func open(name string, data []byte, k *Keys) (*sops.Tree, error) {
	if k == nil {
		return nil, fmt.Errorf("%s: %w", name, ErrEncrypted)
	}
	tree, err := FormatOf(name).store().LoadEncryptedFile(data)
	if err != nil {
		return nil, &DecryptError{File: name, Err: ErrFormat, Detail: err.Error()}
	}
	recipients, err := recipientsOf(tree.Metadata)
	if err != nil {
		return nil, &DecryptError{File: name, Err: ErrFormat, Detail: err.Error()}
	}
	svcs := []keyservice.KeyServiceClient{keyService{keys: k}}
	dataKey, err := tree.Metadata.GetDataKeyWithKeyServices(svcs, nil)
	if err != nil {
		e := &DecryptError{File: name, Recipients: recipients, Tried: k.Public(), Err: ErrNoMatchingKey}
		if slices.ContainsFunc(recipients, func(r string) bool { return slices.Contains(e.Tried, r) }) {
			// A key matches by name, yet the data key would not decrypt.
			e.Err, e.Detail = ErrFormat, "the data key encrypted for a matching key is damaged"
		}
		return nil, e
	}
	cipher := aes.NewCipher()
	computed, err := tree.Decrypt(dataKey, cipher)
	if err != nil {
		return nil, &DecryptError{File: name, Err: ErrMAC, Detail: "an encrypted value does not decrypt with the file's data key (tampered or damaged)"}
	}
	stored, err := cipher.Decrypt(tree.Metadata.MessageAuthenticationCode, dataKey, tree.Metadata.LastModified.Format(time.RFC3339))
	if err != nil || stored != computed {
		return nil, &DecryptError{File: name, Err: ErrMAC, Detail: "the file's values do not match its MAC (edited without sops, or tampered)"}
	}
	return &tree, nil
}

// recipientsOf lists the age recipients and OpenPGP fingerprints the file
// is encrypted for (other key kinds by their SOPS description), within the
// bounds on key metadata.
func recipientsOf(md sops.Metadata) ([]string, error) {
	if len(md.KeyGroups) > maxKeyGroups {
		return nil, fmt.Errorf("%d key groups, at most %d", len(md.KeyGroups), maxKeyGroups)
	}
	var out []string
	for _, g := range md.KeyGroups {
		for _, key := range g {
			out = append(out, publicOf(key))
		}
	}
	if len(out) > maxFileKeys {
		return nil, fmt.Errorf("%d keys, at most %d", len(out), maxFileKeys)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no key in the SOPS metadata")
	}
	return out, nil
}

func publicOf(key keys.MasterKey) string {
	switch key := key.(type) {
	case *sopsage.MasterKey:
		return key.Recipient
	case *pgp.MasterKey:
		return key.Fingerprint
	}
	return key.TypeToIdentifier() + " " + key.ToString()
}

// recoverFormat turns a panic of SOPS's parsers on crafted input into an
// ErrFormat error naming the file (a crafted file must not end the process).
func recoverFormat(name string, err *error) {
	if r := recover(); r != nil {
		*err = &DecryptError{File: name, Err: ErrFormat, Detail: "SOPS could not read the file"}
	}
}

// Ciphertext returns the SOPS file called name as it would read without
// its metadata: every encrypted value stays ENC[…], the sops section is
// gone. A preview or a Role derivation without the key reads a SOPS file
// this way: kinds, names and which values changed are visible, no value is.
func Ciphertext(name string, data []byte) (out []byte, err error) {
	defer recoverFormat(name, &err)
	store := FormatOf(name).store()
	tree, err := store.LoadEncryptedFile(data)
	if err != nil {
		return nil, &DecryptError{File: name, Err: ErrFormat, Detail: err.Error()}
	}
	out, err = store.EmitPlainFile(tree.Branches)
	if err != nil {
		return nil, &DecryptError{File: name, Err: ErrFormat, Detail: err.Error()}
	}
	return out, nil
}

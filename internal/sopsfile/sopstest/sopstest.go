// Package sopstest makes age keys and SOPS files for tests.
package sopstest

import (
	"testing"

	"filippo.io/age"

	"github.com/keyless-cd/keyless/internal/sopsfile"
)

// Key is an age key pair: Recipient to encrypt for, File as age-keygen
// writes it (the content of a *.agekey Secret entry or a key file).
type Key struct {
	Recipient string
	File      []byte
}

// NewKey generates an age key pair.
func NewKey(t testing.TB) Key {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return Key{
		Recipient: id.Recipient().String(),
		File:      []byte("# public key: " + id.Recipient().String() + "\n" + id.String() + "\n"),
	}
}

// Encrypt encrypts plain (the file called name) for k with the default
// encrypted_regex (Secret data and stringData).
func Encrypt(t testing.TB, k Key, name, plain string) []byte {
	t.Helper()
	return EncryptWith(t, k, name, plain, sopsfile.EncryptOptions{})
}

// EncryptAll encrypts every value of plain (e.g. a Helm values file).
func EncryptAll(t testing.TB, k Key, name, plain string) []byte {
	t.Helper()
	return EncryptWith(t, k, name, plain, sopsfile.EncryptOptions{EncryptAll: true})
}

// EncryptWith encrypts plain for k with opts (its recipients set to k's).
func EncryptWith(t testing.TB, k Key, name, plain string, opts sopsfile.EncryptOptions) []byte {
	t.Helper()
	opts.AgeRecipients = []string{k.Recipient}
	out, err := sopsfile.Encrypt(name, []byte(plain), opts)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

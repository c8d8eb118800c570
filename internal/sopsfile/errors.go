package sopsfile

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinels of this package's errors; decide with errors.Is.
var (
	// ErrEncrypted: a SOPS-encrypted file and no keys to decrypt it with.
	ErrEncrypted = errors.New("SOPS-encrypted file and no decryption configured")
	// ErrNoMatchingKey: none of the keys given is a recipient of the file.
	ErrNoMatchingKey = errors.New("no decryption key matches")
	// ErrMAC: the file's values do not match its MAC (tampered or damaged).
	ErrMAC = errors.New("SOPS MAC mismatch")
	// ErrKeys: a decryption Secret or key file could not be read.
	ErrKeys = errors.New("decryption keys unreadable")
	// ErrFormat: the file carries SOPS metadata SOPS cannot read.
	ErrFormat = errors.New("unreadable SOPS file")
)

// DecryptError says which file could not be decrypted, whom it was
// encrypted for and which keys were tried; it never holds a value.
type DecryptError struct {
	// File is the file's name (relative to the checkout).
	File string
	// Recipients are the file's age recipients and OpenPGP fingerprints.
	Recipients []string
	// Tried are the public halves of the keys tried.
	Tried []string
	// Err is the sentinel (ErrNoMatchingKey, ErrMAC, ErrFormat).
	Err error
	// Detail says more, without a value.
	Detail string
}

func (e *DecryptError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "decrypting %s: %v", e.File, e.Err)
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	if errors.Is(e.Err, ErrNoMatchingKey) {
		fmt.Fprintf(&b, "; the file is encrypted for %s, the keys tried are %s", listOrNone(e.Recipients), listOrNone(e.Tried))
	}
	return b.String()
}

func (e *DecryptError) Unwrap() error { return e.Err }

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

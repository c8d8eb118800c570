package render

import (
	"errors"
	"fmt"

	"github.com/keyless-cd/keyless/internal/sopsfile"
)

// Decryption holds the keys SOPS-encrypted files of a render are decrypted
// with: the entries of an Application's spec.decryption Secret, or a key
// file given to the CLI. The keys and the plaintext stay in memory.
type Decryption struct {
	// Keys are key entries by name: *.agekey (age identities) and *.asc
	// (armored OpenPGP private keys); other names are ignored.
	Keys map[string][]byte `json:"keys"`
}

// String names how many key entries there are, never a key: Options may
// be printed (%+v) into messages and cache keys.
func (d *Decryption) String() string {
	if d == nil {
		return "<nil>"
	}
	return fmt.Sprintf("sops (%d key entries)", len(d.Keys))
}

// ErrDecryption is wrapped by every error of decrypting a SOPS file (and of
// finding one with no decryption configured); errors.Is with the sopsfile
// sentinels (ErrEncrypted, ErrNoMatchingKey, ErrMAC) says more.
var ErrDecryption = errors.New("SOPS decryption failed")

// decryptionError wraps a sopsfile error with ErrDecryption.
type decryptionError struct{ err error }

func (e *decryptionError) Error() string   { return e.err.Error() }
func (e *decryptionError) Unwrap() []error { return []error{e.err, ErrDecryption} }

// decrypter decrypts the SOPS files a render reads, and remembers which.
type decrypter struct {
	keys      *sopsfile.Keys // nil: no decryption configured
	opaque    bool           // no keys: read SOPS files as ciphertext
	decrypted []string
	encrypted []string // read as ciphertext (opaque)
}

func newDecrypter(d *Decryption, opaque bool) (*decrypter, error) {
	if d == nil {
		return &decrypter{opaque: opaque}, nil
	}
	keys, err := sopsfile.ParseKeys(d.Keys)
	if err != nil {
		return nil, &decryptionError{err: err}
	}
	return &decrypter{keys: keys}, nil
}

// read returns data, the content of the file rel, decrypted when it is a
// SOPS file; one with no keys configured is refused, never passed on
// encrypted.
func (d *decrypter) read(rel string, data []byte) ([]byte, error) {
	if d == nil || !sopsfile.IsEncrypted(rel, data) {
		return data, nil
	}
	if d.keys == nil && d.opaque {
		out, err := sopsfile.Ciphertext(rel, data)
		if err != nil {
			return nil, &decryptionError{err: err}
		}
		d.encrypted = append(d.encrypted, rel)
		return out, nil
	}
	if d.keys == nil {
		return nil, &decryptionError{err: fmt.Errorf("%s is SOPS-encrypted and no decryption is configured (spec.decryption on an Application, --decryption-key-file for the CLI): %w", rel, sopsfile.ErrEncrypted)}
	}
	plain, err := sopsfile.Decrypt(rel, data, d.keys)
	if err != nil {
		return nil, &decryptionError{err: err}
	}
	d.decrypted = append(d.decrypted, rel)
	return plain, nil
}

// checkNoSOPSMetadata refuses a rendered object that still carries SOPS
// metadata (from a file the render did not decrypt, e.g. a chart's own
// values.yaml or a template): it would be applied encrypted.
func checkNoSOPSMetadata(objs []sourced) error {
	for _, o := range objs {
		if md, ok := o.obj.Object["sops"].(map[string]any); ok {
			if _, ok := md["mac"]; ok {
				return &decryptionError{err: fmt.Errorf("%s: %s/%s carries SOPS metadata and was not decrypted; encrypted files are decrypted in plain directories, kustomizations and helm.valueFiles only: %w",
					o.source, o.obj.GetKind(), o.obj.GetName(), sopsfile.ErrEncrypted)}
			}
		}
	}
	return nil
}

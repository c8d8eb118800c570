package sopsfile

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"

	"filippo.io/age"
	"github.com/ProtonMail/go-crypto/openpgp"
)

// Key file endings in a decryption Secret, as Flux names them.
const (
	AgeKeySuffix = ".agekey"
	PGPKeySuffix = ".asc"
)

// Limits on a decryption Secret or key file.
const (
	// MaxKeyFiles is the most key entries read from one Secret.
	MaxKeyFiles = 64
	// MaxIdentities is the most age identities and OpenPGP keys kept.
	MaxIdentities = 256
)

// Keys are the private keys a file may be decrypted with, held in memory.
// Their String never shows a key, only how many there are.
type Keys struct {
	age    []age.Identity
	pgp    openpgp.EntityList
	public []string // age recipients and OpenPGP fingerprints, for messages
}

// ParseKeys parses key files by name: a name ending in .agekey holds age
// identities (one per line, # comments, as age-keygen writes them), one
// ending in .asc an armored OpenPGP private key (or several). Other names
// are ignored, as Flux does. Errors name the entry, never its content.
func ParseKeys(files map[string][]byte) (*Keys, error) {
	names := make([]string, 0, len(files))
	for name := range files {
		if strings.HasSuffix(name, AgeKeySuffix) || strings.HasSuffix(name, PGPKeySuffix) {
			names = append(names, name)
		}
	}
	if len(names) > MaxKeyFiles {
		return nil, fmt.Errorf("%w: %d key entries, at most %d", ErrKeys, len(names), MaxKeyFiles)
	}
	sort.Strings(names)
	k := &Keys{}
	for _, name := range names {
		data := files[name]
		var err error
		if strings.HasSuffix(name, AgeKeySuffix) {
			err = k.addAge(data)
		} else {
			err = k.addPGP(data)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrKeys, name, err)
		}
	}
	if len(k.age)+len(k.pgp) > MaxIdentities {
		return nil, fmt.Errorf("%w: %d keys, at most %d", ErrKeys, len(k.age)+len(k.pgp), MaxIdentities)
	}
	if len(k.age)+len(k.pgp) == 0 {
		return nil, fmt.Errorf("%w: no *%s or *%s entry with a key", ErrKeys, AgeKeySuffix, PGPKeySuffix)
	}
	return k, nil
}

// ParseKeyFile parses one key file given on the command line: age
// identities, or an armored OpenPGP private key when it starts like one.
func ParseKeyFile(name string, data []byte) (*Keys, error) {
	k, err := ParseKeys(map[string][]byte{KeyEntryName(name, data): data})
	if err != nil {
		return nil, fmt.Errorf("decryption key file %s: %w", name, err)
	}
	return k, nil
}

// KeyEntryName is the entry name a key file called name is read under: with
// .asc when it holds an armored OpenPGP private key, else .agekey.
func KeyEntryName(name string, data []byte) string {
	if bytes.Contains(data, []byte("-----BEGIN PGP PRIVATE KEY BLOCK-----")) {
		return name + PGPKeySuffix
	}
	return name + AgeKeySuffix
}

func (k *Keys) addAge(data []byte) error {
	ids, err := age.ParseIdentities(bytes.NewReader(data))
	if err != nil {
		// age's parse errors quote no key material, but keep only the line
		// number of the message to be sure.
		return fmt.Errorf("not age identities (%s)", lineOf(err))
	}
	for _, id := range ids {
		k.age = append(k.age, id)
		if r, ok := id.(interface{ Recipient() *age.X25519Recipient }); ok {
			k.public = append(k.public, r.Recipient().String())
		} else if r, ok := id.(interface{ Recipient() *age.HybridRecipient }); ok {
			k.public = append(k.public, r.Recipient().String())
		}
	}
	return nil
}

func (k *Keys) addPGP(data []byte) error {
	ents, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("not an armored OpenPGP key: %w", err)
	}
	for _, e := range ents {
		if e.PrivateKey == nil {
			return fmt.Errorf("OpenPGP key %X holds no private key", e.PrimaryKey.Fingerprint)
		}
		k.pgp = append(k.pgp, e)
		k.public = append(k.public, fmt.Sprintf("%X", e.PrimaryKey.Fingerprint))
	}
	return nil
}

// lineOf keeps "line N" of an age parse error.
func lineOf(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "line "); i >= 0 {
		end := i + len("line ")
		for end < len(msg) && msg[end] >= '0' && msg[end] <= '9' {
			end++
		}
		return msg[i:end]
	}
	return "unreadable"
}

// Public returns the age recipients and OpenPGP fingerprints of the keys:
// what a message may show of them.
func (k *Keys) Public() []string { return append([]string(nil), k.public...) }

// String shows how many keys there are, never a key.
func (k *Keys) String() string {
	if k == nil {
		return "no keys"
	}
	return fmt.Sprintf("%d keys", len(k.age)+len(k.pgp))
}

// readBounded reads at most limit bytes of r; more is an error.
func readBounded(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("more than %d bytes", limit)
	}
	return data, nil
}

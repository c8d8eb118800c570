package gitsource

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"

	"github.com/keyless-cd/keyless/internal/artifactsign"
)

// TrustedKeys are the keys whose commit signatures are accepted, and the
// Sigstore rule for commits signed with gitsign (Sigstore, nil: none).
type TrustedKeys struct {
	pgp openpgp.EntityList
	ssh []ssh.PublicKey
	// Sigstore, when set, accepts gitsign signatures (x509, a Fulcio
	// certificate) by its identities under its trusted root.
	Sigstore *artifactsign.Policy
}

// ErrNoTrustedKeys is returned by ParseTrustedKeys for data without keys.
var ErrNoTrustedKeys = errors.New("no trusted keys: add *.asc (OpenPGP) or *.pub (SSH) entries")

// ErrUnsigned is returned (wrapped) for a commit without a signature.
var ErrUnsigned = errors.New("commit is not signed")

// ErrUntrusted is returned (wrapped) when no trusted key made the signature.
var ErrUntrusted = errors.New("signature is not by a trusted key")

// ParseTrustedKeys reads a Secret's data: every *.asc key holds armored
// OpenPGP public keys, every *.pub key holds SSH public keys (authorized_keys
// format, one per line). Other keys are ignored.
func ParseTrustedKeys(data map[string][]byte) (*TrustedKeys, error) {
	names := make([]string, 0, len(data))
	for k := range data {
		names = append(names, k)
	}
	sort.Strings(names)
	tk := &TrustedKeys{}
	for _, name := range names {
		switch {
		case strings.HasSuffix(name, ".asc"):
			el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(data[name]))
			if err != nil {
				return nil, fmt.Errorf("key %q: not an armored OpenPGP key ring: %w", name, err)
			}
			tk.pgp = append(tk.pgp, el...)
		case strings.HasSuffix(name, ".pub"):
			rest := data[name]
			for len(bytes.TrimSpace(rest)) > 0 {
				pub, _, _, r, err := ssh.ParseAuthorizedKey(rest)
				if err != nil {
					return nil, fmt.Errorf("key %q: not an SSH public key: %w", name, err)
				}
				tk.ssh = append(tk.ssh, pub)
				rest = r
			}
		}
	}
	if len(tk.pgp) == 0 && len(tk.ssh) == 0 {
		return nil, ErrNoTrustedKeys
	}
	return tk, nil
}

// Verify checks the commit's signature (OpenPGP or SSH, namespace "git")
// against keys and returns the signer's key fingerprint.
func (c *Commit) Verify(keys *TrustedKeys) (string, error) {
	sig := strings.TrimSpace(c.object.PGPSignature)
	if sig == "" {
		return "", fmt.Errorf("%w: %s", ErrUnsigned, c.SHA)
	}
	enc := &plumbing.MemoryObject{}
	if err := c.object.EncodeWithoutSignature(enc); err != nil {
		return "", fmt.Errorf("encoding commit %s: %w", c.SHA, err)
	}
	rd, err := enc.Reader()
	if err != nil {
		return "", err
	}
	payload, err := io.ReadAll(rd)
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(sig, artifactsign.GitsignHeader) {
		if keys.Sigstore == nil {
			return "", fmt.Errorf("%w: commit %s is signed with Sigstore (gitsign); trust its signers with spec.source.verify.matchIdentities", ErrUntrusted, c.SHA)
		}
		v, err := artifactsign.VerifyCommit(payload, []byte(sig), *keys.Sigstore)
		if err != nil {
			return "", fmt.Errorf("%w: commit %s: %w", ErrUntrusted, c.SHA, err)
		}
		return v.String(), nil
	}
	if strings.HasPrefix(sig, "-----BEGIN SSH SIGNATURE-----") {
		s, err := sshsig.Unarmor([]byte(sig))
		if err != nil {
			return "", fmt.Errorf("commit %s: malformed SSH signature: %w", c.SHA, err)
		}
		for _, k := range keys.ssh {
			if err := sshsig.Verify(bytes.NewReader(payload), s, k, s.HashAlgorithm, "git"); err == nil {
				return ssh.FingerprintSHA256(k), nil
			}
		}
		return "", fmt.Errorf("%w: commit %s is signed by SSH key %s", ErrUntrusted, c.SHA, ssh.FingerprintSHA256(s.PublicKey))
	}
	signer, err := openpgp.CheckArmoredDetachedSignature(keys.pgp, bytes.NewReader(payload), strings.NewReader(sig), nil)
	if err != nil {
		return "", fmt.Errorf("%w: commit %s: %w", ErrUntrusted, c.SHA, err)
	}
	return fmt.Sprintf("%X", signer.PrimaryKey.Fingerprint), nil
}

package sopsfile

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"filippo.io/age"
	"filippo.io/age/armor"
	"github.com/ProtonMail/go-crypto/openpgp"
	pgparmor "github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/getsops/sops/v3/keyservice"
	"google.golang.org/grpc"
)

// maxDataKeyBytes bounds a decrypted data key (SOPS's are 32 bytes; a Shamir
// part a little more).
const maxDataKeyBytes = 1 << 10

// errUnsupportedKey: a master key of a kind this key service does not hold
// (a cloud KMS, Vault): out of scope, by design.
var errUnsupportedKey = errors.New("only age and OpenPGP keys are supported (no cloud KMS)")

// keyService is the SOPS key service of Keys: it decrypts data keys with
// the age identities and OpenPGP keys in memory, and nothing else.
type keyService struct{ keys *Keys }

var _ keyservice.KeyServiceClient = keyService{}

// Decrypt decrypts the data key in req with a matching key.
func (s keyService) Decrypt(_ context.Context, req *keyservice.DecryptRequest, _ ...grpc.CallOption) (*keyservice.DecryptResponse, error) {
	key := req.GetKey()
	switch {
	case key.GetAgeKey() != nil:
		plain, err := s.decryptAge(req.GetCiphertext())
		if err != nil {
			return nil, err
		}
		return &keyservice.DecryptResponse{Plaintext: plain}, nil
	case key.GetPgpKey() != nil:
		plain, err := s.decryptPGP(req.GetCiphertext())
		if err != nil {
			return nil, err
		}
		return &keyservice.DecryptResponse{Plaintext: plain}, nil
	}
	return nil, errUnsupportedKey
}

// Encrypt is not offered: encryption goes through recipients (see Encrypt).
func (s keyService) Encrypt(context.Context, *keyservice.EncryptRequest, ...grpc.CallOption) (*keyservice.EncryptResponse, error) {
	return nil, errUnsupportedKey
}

func (s keyService) decryptAge(ciphertext []byte) ([]byte, error) {
	if len(s.keys.age) == 0 {
		return nil, ErrNoMatchingKey
	}
	r, err := age.Decrypt(armor.NewReader(bytes.NewReader(ciphertext)), s.keys.age...)
	if err != nil {
		var noMatch *age.NoIdentityMatchError
		if errors.As(err, &noMatch) {
			return nil, ErrNoMatchingKey
		}
		return nil, fmt.Errorf("age: %w", err)
	}
	return readBounded(r, maxDataKeyBytes)
}

func (s keyService) decryptPGP(ciphertext []byte) ([]byte, error) {
	if len(s.keys.pgp) == 0 {
		return nil, ErrNoMatchingKey
	}
	block, err := pgparmor.Decode(bytes.NewReader(ciphertext))
	if err != nil {
		return nil, fmt.Errorf("OpenPGP armor: %w", err)
	}
	md, err := openpgp.ReadMessage(block.Body, s.keys.pgp, nil, nil)
	if err != nil {
		if errors.Is(err, pgperrors.ErrKeyIncorrect) {
			return nil, ErrNoMatchingKey
		}
		return nil, fmt.Errorf("OpenPGP: %w", err)
	}
	return readBounded(md.UnverifiedBody, maxDataKeyBytes)
}

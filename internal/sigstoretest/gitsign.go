package sigstoretest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"io"

	"github.com/digitorus/pkcs7"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// GitsignSigner signs Git commits as gitsign does (a PEM "SIGNED MESSAGE":
// detached CMS, ECDSA P-256, the Fulcio leaf certificate, an RFC 3161 token
// in the unsigned attributes), against the stack's Fulcio and timestamp
// authority with IDToken, without Rekor. It is a go-git Signer
// (git.CommitOptions.Signer).
type GitsignSigner struct {
	Ctx               context.Context
	FulcioURL, TSAURL string
	IDToken           string
}

// keypair adapts an ephemeral key to sigstore-go.
type keypair struct{ k *ecdsa.PrivateKey }

func (keypair) GetHashAlgorithm() protocommon.HashAlgorithm {
	return protocommon.HashAlgorithm_SHA2_256
}
func (keypair) GetSigningAlgorithm() protocommon.PublicKeyDetails {
	return protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256
}
func (keypair) GetHint() []byte                  { return nil }
func (keypair) GetKeyAlgorithm() string          { return "ECDSA" }
func (p keypair) GetPublicKey() crypto.PublicKey { return p.k.Public() }
func (p keypair) GetPublicKeyPem() (string, error) {
	b, err := cryptoutils.MarshalPublicKeyToPEM(p.k.Public())
	return string(b), err
}
func (p keypair) SignData(_ context.Context, data []byte) ([]byte, []byte, error) {
	d := sha256.Sum256(data)
	s, err := ecdsa.SignASN1(rand.Reader, p.k, d[:])
	return s, d[:], err
}

var oidTimeStampToken = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 14}

// Sign signs the commit payload go-git hands a signer.
func (s GitsignSigner) Sign(message io.Reader) ([]byte, error) {
	payload, err := io.ReadAll(message)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := sign.NewFulcio(&sign.FulcioOptions{BaseURL: s.FulcioURL}).
		GetCertificate(s.Ctx, keypair{key}, &sign.CertificateProviderOptions{IDToken: s.IDToken})
	if err != nil {
		return nil, fmt.Errorf("fulcio: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	sd, err := pkcs7.NewSignedData(payload)
	if err != nil {
		return nil, err
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if err := sd.AddSigner(cert, key, pkcs7.SignerInfoConfig{}); err != nil {
		return nil, err
	}
	sd.Detach()
	si := &sd.GetSignedData().SignerInfos[0]
	resp, err := sign.NewTimestampAuthority(&sign.TimestampAuthorityOptions{URL: s.TSAURL}).GetTimestamp(s.Ctx, si.EncryptedDigest)
	if err != nil {
		return nil, fmt.Errorf("tsa: %w", err)
	}
	var tsr struct {
		Status asn1.RawValue
		Token  asn1.RawValue
	}
	if _, err := asn1.Unmarshal(resp, &tsr); err != nil {
		return nil, fmt.Errorf("TimeStampResp: %w", err)
	}
	if err := si.SetUnauthenticatedAttributes([]pkcs7.Attribute{{Type: oidTimeStampToken, Value: tsr.Token}}); err != nil {
		return nil, err
	}
	out, err := sd.Finish()
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "SIGNED MESSAGE", Bytes: out}), nil
}

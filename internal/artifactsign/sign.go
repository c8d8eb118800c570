package artifactsign

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"oras.land/oras-go/v2/registry/remote"
)

// SignOptions say how to sign: with Key, or keyless with IDToken and
// FulcioURL. A keyless signature needs a time a verifier trusts: a
// timestamp (TimestampURLs) or a transparency-log entry (RekorURL), or
// both.
type SignOptions struct {
	// Key signs with a long-lived ECDSA P-256 key (LoadPrivateKey).
	Key *ecdsa.PrivateKey
	// IDToken is the CI job's OIDC token (audience sigstore) that Fulcio
	// exchanges for a certificate of an ephemeral key.
	IDToken string
	// FulcioURL is the Fulcio to ask (https://fulcio.sigstore.dev, or a
	// private one).
	FulcioURL string
	// TimestampURLs are RFC 3161 timestamp authorities
	// (https://timestamp.sigstore.dev/api/v1/timestamp, or a private one).
	TimestampURLs []string
	// RekorURL is the transparency log to record the signature in
	// (https://rekor.sigstore.dev); "" for none.
	RekorURL string
	// HTTPClient is used for Fulcio, the timestamp authorities and Rekor.
	// Default: http.DefaultClient's transport with a 30 s timeout.
	HTTPClient *http.Client
	// Now is the clock (tests). Default time.Now.
	Now func() time.Time
}

// Signed describes a signature pushed.
type Signed struct {
	// Referrer is the digest of the signature's referrer manifest.
	Referrer string `json:"referrer"`
	// Certificate is the signing certificate's subject (keyless) or "" (key).
	Certificate string `json:"certificate,omitempty"`
	// KeyID is the key's hint (key signing).
	KeyID string `json:"keyID,omitempty"`
}

// Sign signs the artifact subject (its manifest descriptor) in repo and
// pushes the signature as a referrer.
func Sign(ctx context.Context, repo *remote.Repository, subject ocispec.Descriptor, opts SignOptions) (*Signed, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	st, err := statement(subject)
	if err != nil {
		return nil, err
	}
	content := &sign.DSSEData{Data: st, PayloadType: payloadType}
	var kp sign.Keypair
	var bo sign.BundleOptions
	bo.Context = ctx
	switch {
	case opts.Key != nil && opts.IDToken != "":
		return nil, errors.New("sign with a key or keyless with a token, not both")
	case opts.Key != nil:
		kp = &keypair{priv: opts.Key}
	case opts.IDToken != "":
		if opts.FulcioURL == "" {
			return nil, errors.New("keyless signing needs a Fulcio URL")
		}
		if len(opts.TimestampURLs) == 0 && opts.RekorURL == "" {
			return nil, errors.New("keyless signing needs a timestamp authority or a Rekor: the certificate lives 10 minutes, a verifier needs a trusted time of signing")
		}
		if kp, err = sign.NewEphemeralKeypair(nil); err != nil {
			return nil, err
		}
		bo.CertificateProvider = sign.NewFulcio(&sign.FulcioOptions{BaseURL: opts.FulcioURL, Timeout: 30 * time.Second, Transport: opts.HTTPClient.Transport})
		bo.CertificateProviderOptions = &sign.CertificateProviderOptions{IDToken: opts.IDToken}
		for _, u := range opts.TimestampURLs {
			bo.TimestampAuthorities = append(bo.TimestampAuthorities, sign.NewTimestampAuthority(&sign.TimestampAuthorityOptions{URL: u, Timeout: 30 * time.Second, Transport: opts.HTTPClient.Transport}))
		}
		if opts.RekorURL != "" {
			bo.TransparencyLogs = append(bo.TransparencyLogs, sign.NewRekor(&sign.RekorOptions{BaseURL: opts.RekorURL, Timeout: 30 * time.Second}))
		}
	default:
		return nil, errors.New("nothing to sign with: give a key, or a CI job's OIDC token for keyless signing")
	}
	pb, err := sign.Bundle(content, kp, bo)
	if err != nil {
		return nil, fmt.Errorf("signing %s: %w", subject.Digest, err)
	}
	bj, err := (&sgbundle.Bundle{Bundle: pb}).MarshalJSON()
	if err != nil {
		return nil, err
	}
	desc, err := pushBundle(ctx, repo, subject, bj, opts.Now())
	if err != nil {
		return nil, err
	}
	out := &Signed{Referrer: desc.Digest.String()}
	if c := pb.GetVerificationMaterial().GetCertificate(); c != nil {
		if cert, err := x509.ParseCertificate(c.GetRawBytes()); err == nil {
			out.Certificate = subjectOf(cert)
		}
	} else {
		out.KeyID = string(kp.GetHint())
	}
	return out, nil
}

// subjectOf is a Fulcio certificate's subject: its URI or e-mail SAN.
func subjectOf(cert *x509.Certificate) string {
	if len(cert.URIs) > 0 {
		return cert.URIs[0].String()
	}
	if len(cert.EmailAddresses) > 0 {
		return cert.EmailAddresses[0]
	}
	return cert.Subject.String()
}

// keypair adapts a long-lived ECDSA P-256 key to sigstore-go's signer.
type keypair struct{ priv *ecdsa.PrivateKey }

func (k *keypair) GetHashAlgorithm() protocommon.HashAlgorithm {
	return protocommon.HashAlgorithm_SHA2_256
}

func (k *keypair) GetSigningAlgorithm() protocommon.PublicKeyDetails {
	return protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256
}

func (k *keypair) GetHint() []byte { return []byte(KeyID(k.priv.Public())) }

func (k *keypair) GetKeyAlgorithm() string { return "ECDSA" }

func (k *keypair) GetPublicKey() crypto.PublicKey { return k.priv.Public() }

func (k *keypair) GetPublicKeyPem() (string, error) {
	b, err := cryptoutils.MarshalPublicKeyToPEM(k.priv.Public())
	return string(b), err
}

func (k *keypair) SignData(_ context.Context, data []byte) ([]byte, []byte, error) {
	h := sha256.Sum256(data)
	sig, err := ecdsa.SignASN1(rand.Reader, k.priv, h[:])
	return sig, h[:], err
}

// KeyID names a public key: the base64 SHA-256 of its DER (sigstore-go's
// hint).
func KeyID(pub crypto.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return ""
	}
	h := sha256.Sum256(der)
	return base64.StdEncoding.EncodeToString(h[:])
}

// LoadPrivateKey reads a PEM private key: PKCS#8, SEC 1 (EC PRIVATE KEY),
// or cosign's encrypted format (ENCRYPTED SIGSTORE/COSIGN PRIVATE KEY) with
// password. It must be ECDSA P-256.
func LoadPrivateKey(pemBytes, password []byte) (*ecdsa.PrivateKey, error) {
	k, err := cryptoutils.UnmarshalPEMToPrivateKey(pemBytes, cryptoutils.StaticPasswordFunc(password))
	if err != nil {
		return nil, fmt.Errorf("reading the signing key: %w", err)
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("the signing key is a %T, want ECDSA P-256 (cosign generate-key-pair makes one)", k)
	}
	return ec, nil
}

// LoadPublicKey reads a PEM public key (cosign.pub).
func LoadPublicKey(pemBytes []byte) (crypto.PublicKey, error) {
	k, err := cryptoutils.UnmarshalPEMToPublicKey(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("reading a public key: %w", err)
	}
	return k, nil
}

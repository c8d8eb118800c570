// Sigstore-signed Git commits (gitsign: x509 CMS signatures carrying a
// Fulcio certificate), verified with sigstore-go and no Rekor: the CMS
// SignerInfo is mapped onto a Sigstore bundle v0.3 (a message signature over
// the DER signed attributes, the leaf certificate, the RFC 3161 token of the
// unsigned attributes), which sigstore-go verifies against the trusted root
// (the Fulcio chain at the timestamp's time, the timestamp authority, the
// identities); the content binding (messageDigest = SHA-256 of the commit
// payload) is checked here, as sigstore-go cannot.
package artifactsign

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/verify"
)

var (
	oidSignedData    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidData          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidContentType   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidMessageDigest = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	oidTimeStampTok  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 14}
	oidSHA256        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidECDSASHA256   = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
)

type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"explicit,tag:0"`
}

type encapContentInfo struct {
	EContentType asn1.ObjectIdentifier
	EContent     asn1.RawValue `asn1:"optional,explicit,tag:0"`
}

type signedData struct {
	Version          int
	DigestAlgorithms asn1.RawValue
	EncapContentInfo encapContentInfo
	Certificates     asn1.RawValue `asn1:"optional,tag:0"`
	CRLs             asn1.RawValue `asn1:"optional,tag:1"`
	SignerInfos      []signerInfo  `asn1:"set"`
}

type signerInfo struct {
	Version            int
	SID                asn1.RawValue
	DigestAlgorithm    pkix.AlgorithmIdentifier
	SignedAttrs        asn1.RawValue `asn1:"optional,tag:0"`
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          []byte
	UnsignedAttrs      asn1.RawValue `asn1:"optional,tag:1"`
}

type issuerAndSerial struct {
	Issuer asn1.RawValue
	Serial *big.Int
}

type attribute struct {
	Type   asn1.ObjectIdentifier
	Values asn1.RawValue // SET OF
}

// attrValues returns the values of attribute oid in a [0]/[1] IMPLICIT SET OF Attribute.
func attrValues(set asn1.RawValue, oid asn1.ObjectIdentifier) ([]asn1.RawValue, error) {
	var out []asn1.RawValue
	rest := set.Bytes
	for len(rest) > 0 {
		var a attribute
		var err error
		if rest, err = asn1.Unmarshal(rest, &a); err != nil {
			return nil, err
		}
		if !a.Type.Equal(oid) {
			continue
		}
		vals := a.Values.Bytes
		for len(vals) > 0 {
			var v asn1.RawValue
			if vals, err = asn1.Unmarshal(vals, &v); err != nil {
				return nil, err
			}
			out = append(out, v)
		}
	}
	return out, nil
}

// gitsignBundle is a gitsign signature mapped onto a Sigstore bundle.
type gitsignBundle struct {
	Bundle *bundle.Bundle
	// SignedAttrs is the DER SET the signature covers (the bundle's artifact).
	SignedAttrs []byte
	Cert        *x509.Certificate
}

// parseGitsign checks the CMS structure and the binding of the signature to
// payload (the commit object without its gpgsig header) and returns the
// bundle.
func parseGitsign(payload, armored []byte) (*gitsignBundle, error) {
	blk, _ := pem.Decode(armored)
	if blk == nil || blk.Type != "SIGNED MESSAGE" {
		return nil, errors.New("not a PEM SIGNED MESSAGE")
	}
	var ci contentInfo
	if err := unmarshalAll(blk.Bytes, &ci); err != nil {
		return nil, fmt.Errorf("CMS ContentInfo: %w", err)
	}
	if !ci.ContentType.Equal(oidSignedData) {
		return nil, fmt.Errorf("content type %v is not signedData", ci.ContentType)
	}
	var sd signedData
	if err := unmarshalAll(ci.Content.Bytes, &sd); err != nil {
		return nil, fmt.Errorf("CMS SignedData: %w", err)
	}
	if !sd.EncapContentInfo.EContentType.Equal(oidData) || len(sd.EncapContentInfo.EContent.Bytes) != 0 {
		return nil, errors.New("not a detached id-data signature")
	}
	if len(sd.SignerInfos) != 1 {
		return nil, fmt.Errorf("%d signers, want 1", len(sd.SignerInfos))
	}
	si := sd.SignerInfos[0]
	if !si.DigestAlgorithm.Algorithm.Equal(oidSHA256) || !si.SignatureAlgorithm.Algorithm.Equal(oidECDSASHA256) {
		return nil, fmt.Errorf("algorithms %v/%v, want sha256/ecdsa-with-SHA256", si.DigestAlgorithm.Algorithm, si.SignatureAlgorithm.Algorithm)
	}
	if len(si.SignedAttrs.FullBytes) == 0 {
		return nil, errors.New("no signed attributes")
	}
	if err := checkBinding(si, payload); err != nil {
		return nil, err
	}
	// The signature is over the DER of the SignedAttrs with the SET tag (RFC 5652 5.4).
	signedAttrs := append([]byte(nil), si.SignedAttrs.FullBytes...)
	signedAttrs[0] = 0x31
	leaf, err := signerCert(sd, si)
	if err != nil {
		return nil, err
	}
	// RFC 3161 tokens (over the signature value), wrapped as TimeStampResp for sigstore-go.
	toks, err := attrValues(si.UnsignedAttrs, oidTimeStampTok)
	if err != nil {
		return nil, fmt.Errorf("timestamp attribute: %w", err)
	}
	tvd := &protobundle.TimestampVerificationData{}
	for _, t := range toks {
		resp, err := asn1.Marshal(struct {
			Status struct{ Status int }
			Token  asn1.RawValue
		}{Token: asn1.RawValue{FullBytes: t.FullBytes}})
		if err != nil {
			return nil, err
		}
		tvd.Rfc3161Timestamps = append(tvd.Rfc3161Timestamps, &protocommon.RFC3161SignedTimestamp{SignedTimestamp: resp})
	}
	sum := sha256.Sum256(signedAttrs)
	pb := &protobundle.Bundle{
		MediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
		Content: &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: sum[:]},
			Signature:     si.Signature,
		}},
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content:                   &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: leaf.Raw}},
			TimestampVerificationData: tvd,
		},
	}
	b, err := bundle.NewBundle(pb)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	return &gitsignBundle{Bundle: b, SignedAttrs: signedAttrs, Cert: leaf}, nil
}

// GitsignHeader starts a gitsign (x509 CMS) commit signature.
const GitsignHeader = "-----BEGIN SIGNED MESSAGE-----"

// maxGitsignBytes bounds a commit signature.
const maxGitsignBytes = 64 << 10

// VerifyCommit verifies a gitsign signature (armored) of a commit payload
// (the commit object without its gpgsig header) under p's trusted root and
// identities: the signature over the payload, the Fulcio chain at the time
// of a timestamp from one of the root's timestamp authorities (a commit
// signature carries no Rekor entry), and the certificate's identity.
func VerifyCommit(payload, armored []byte, p Policy) (*Verified, error) {
	if p.TrustedRoot == nil || len(p.Identities) == 0 {
		return nil, errors.New("a Sigstore-signed commit needs a trusted root and identities (spec.source.verify.matchIdentities)")
	}
	if len(armored) > maxGitsignBytes {
		return nil, fmt.Errorf("a commit signature of %d bytes (more than %d)", len(armored), maxGitsignBytes)
	}
	gb, err := parseGitsign(payload, armored)
	if err != nil {
		return nil, err
	}
	opts := []verify.VerifierOption{verify.WithSignedTimestamps(1)}
	if len(p.TrustedRoot.CTLogs()) > 0 {
		opts = append(opts, verify.WithSignedCertificateTimestamps(1))
	}
	v, err := verify.NewVerifier(p.TrustedRoot, opts...)
	if err != nil {
		return nil, err
	}
	return p.verifyCertified(v, gb.Bundle, verify.WithArtifact(bytes.NewReader(gb.SignedAttrs)), gb.Cert)
}

// checkBinding checks the signed attributes name this payload: contentType
// id-data and messageDigest the payload's SHA-256.
func checkBinding(si signerInfo, payload []byte) error {
	ct, err := attrValues(si.SignedAttrs, oidContentType)
	if err != nil {
		return fmt.Errorf("contentType attribute: %w", err)
	}
	if len(ct) != 1 {
		return fmt.Errorf("contentType attribute: %d values, want 1", len(ct))
	}
	var ctOID asn1.ObjectIdentifier
	if _, err := asn1.Unmarshal(ct[0].FullBytes, &ctOID); err != nil || !ctOID.Equal(oidData) {
		return errors.New("contentType attribute is not id-data")
	}
	md, err := attrValues(si.SignedAttrs, oidMessageDigest)
	if err != nil {
		return fmt.Errorf("messageDigest attribute: %w", err)
	}
	if len(md) != 1 {
		return fmt.Errorf("messageDigest attribute: %d values, want 1", len(md))
	}
	var digest []byte
	if _, err := asn1.Unmarshal(md[0].FullBytes, &digest); err != nil {
		return fmt.Errorf("messageDigest attribute: %w", err)
	}
	if sum := sha256.Sum256(payload); !bytes.Equal(digest, sum[:]) {
		return errors.New("the signature does not cover this commit (messageDigest mismatch)")
	}
	return nil
}

// signerCert is the certificate the signer id (IssuerAndSerialNumber)
// names among the signature's certificates.
func signerCert(sd signedData, si signerInfo) (*x509.Certificate, error) {
	certs, err := x509.ParseCertificates(sd.Certificates.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}
	var ias issuerAndSerial
	if _, err := asn1.Unmarshal(si.SID.FullBytes, &ias); err != nil {
		return nil, fmt.Errorf("signer id: %w", err)
	}
	for _, c := range certs {
		if bytes.Equal(c.RawIssuer, ias.Issuer.FullBytes) && ias.Serial != nil && c.SerialNumber.Cmp(ias.Serial) == 0 {
			return c, nil
		}
	}
	return nil, errors.New("the signer's certificate is not in the signature")
}

// unmarshalAll decodes der into v, refusing trailing bytes.
func unmarshalAll(der []byte, v any) error {
	rest, err := asn1.Unmarshal(der, v)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("%d trailing bytes", len(rest))
	}
	return nil
}

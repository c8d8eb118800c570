package artifactsign

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"
	"oras.land/oras-go/v2/registry/remote"
)

// Policy is what a signature must satisfy: signed by one of Keys, or
// keyless under TrustedRoot by one of Identities.
type Policy struct {
	// Keys are trusted public keys (cosign.pub).
	Keys []crypto.PublicKey
	// TrustedRoot holds the Fulcio CAs, Rekor logs, timestamp authorities
	// and CT logs keyless signatures are checked against (Sigstore's
	// public trusted_root.json, or a private one). Nil: no keyless
	// signature is accepted.
	TrustedRoot *root.TrustedRoot
	// Identities are the certificate identities allowed to sign keylessly;
	// one must match. Required with TrustedRoot.
	Identities []Identity
	// SkipTransparencyLog accepts a signature without a Rekor entry: a key
	// signature then needs nothing more, a keyless one a timestamp from a
	// timestamp authority of TrustedRoot (air-gapped installations).
	// Default false: a transparency-log proof is required.
	SkipTransparencyLog bool
}

// Identity is one pipeline allowed to sign: its token's issuer and the
// Fulcio certificate's subject and extensions. Empty fields are not
// checked; Issuer is required.
type Identity struct {
	// Issuer is the OIDC issuer URL, exactly.
	Issuer string `json:"issuer"`
	// SubjectRegexp matches the certificate's subject (SAN), e.g.
	// ^https://gitlab\.example\.com/grp/app//\.gitlab-ci\.yml@refs/heads/main$.
	SubjectRegexp string `json:"subjectRegexp,omitempty"`
	// SourceRepositoryURI is the repository (https://gitlab.example.com/grp/app).
	SourceRepositoryURI string `json:"sourceRepositoryURI,omitempty"`
	// SourceRepositoryRef is the ref built (refs/heads/main).
	SourceRepositoryRef string `json:"sourceRepositoryRef,omitempty"`
	// SourceRepositoryIdentifier is the repository's immutable id (GitLab
	// project_id, GitHub repository_id).
	SourceRepositoryIdentifier string `json:"sourceRepositoryIdentifier,omitempty"`
}

func (id Identity) String() string {
	var parts []string
	for _, p := range [][2]string{{"issuer", id.Issuer}, {"subject~", id.SubjectRegexp}, {"repository", id.SourceRepositoryURI},
		{"ref", id.SourceRepositoryRef}, {"repository id", id.SourceRepositoryIdentifier}} {
		if p[1] != "" {
			parts = append(parts, p[0]+" "+p[1])
		}
	}
	return strings.Join(parts, ", ")
}

func (id Identity) sigstore() (verify.CertificateIdentity, error) {
	re := id.SubjectRegexp
	if re == "" {
		re = ".*"
	}
	san, err := verify.NewSANMatcher("", re)
	if err != nil {
		return verify.CertificateIdentity{}, fmt.Errorf("subjectRegexp %q: %w", id.SubjectRegexp, err)
	}
	iss, err := verify.NewIssuerMatcher(id.Issuer, "")
	if err != nil {
		return verify.CertificateIdentity{}, err
	}
	return verify.NewCertificateIdentity(san, iss, certificate.Extensions{
		SourceRepositoryURI: id.SourceRepositoryURI, SourceRepositoryRef: id.SourceRepositoryRef,
		SourceRepositoryIdentifier: id.SourceRepositoryIdentifier,
	})
}

// Verified is the signature that satisfied the policy: the key, or the
// pipeline that signed (from its certificate).
type Verified struct {
	// Referrer is the signature's referrer digest.
	Referrer string `json:"referrer"`
	// KeyID is the trusted key's id (key signatures).
	KeyID string `json:"keyID,omitempty"`
	// Issuer, Subject and the extensions name the pipeline (keyless).
	Issuer     string `json:"issuer,omitempty"`
	Subject    string `json:"subject,omitempty"`
	Repository string `json:"repository,omitempty"`
	Ref        string `json:"ref,omitempty"`
	Commit     string `json:"commit,omitempty"`
	Run        string `json:"run,omitempty"`
	// SignedAt is the verified time of signing (timestamp or log entry).
	SignedAt time.Time `json:"signedAt,omitzero"`
}

// String is the identity in one line, for history and Events.
func (v *Verified) String() string {
	if v.KeyID != "" {
		return "key " + v.KeyID
	}
	s := v.Subject
	if v.Repository != "" {
		s = v.Repository
		if v.Ref != "" {
			s += " " + v.Ref
		}
		if len(v.Commit) >= 7 {
			s += "@" + v.Commit[:7]
		}
	}
	if v.Run != "" {
		s += " (" + v.Run + ")"
	}
	return s
}

// VerifyError is an artifact whose signatures all failed the policy: it
// names each signature and why.
type VerifyError struct {
	Digest  string
	Reasons []string
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("%s: no signature satisfies the policy: %s", e.Digest, strings.Join(e.Reasons, "; "))
}

// Verify checks that the artifact subject (its manifest) in repo carries a
// signature satisfying p, and returns it. With no signature at all the
// error wraps ErrUnsigned; otherwise it is a *VerifyError.
func Verify(ctx context.Context, repo *remote.Repository, subject ocispec.Descriptor, p Policy) (*Verified, error) {
	if len(p.Keys) == 0 && p.TrustedRoot == nil {
		return nil, errors.New("a verification policy needs keys or a trusted root")
	}
	if p.TrustedRoot != nil && len(p.Identities) == 0 {
		return nil, errors.New("a keyless verification policy needs at least one identity")
	}
	if subject.Digest.Algorithm() != "sha256" {
		return nil, fmt.Errorf("%s: only sha256 digests are verified", subject.Digest)
	}
	digest, err := hex.DecodeString(subject.Digest.Encoded())
	if err != nil {
		return nil, err
	}
	found, err := bundles(ctx, repo, subject)
	if err != nil {
		return nil, err
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("%s: %w (sign it with keyless publish --sign or cosign sign)", subject.Digest, ErrUnsigned)
	}
	verr := &VerifyError{Digest: subject.Digest.String()}
	for _, f := range found {
		if f.err != nil {
			verr.Reasons = append(verr.Reasons, fmt.Sprintf("signature %s: %v", short(f.where), f.err))
			continue
		}
		v, err := p.check(f, digest)
		if err == nil {
			v.Referrer = f.where
			return v, nil
		}
		verr.Reasons = append(verr.Reasons, fmt.Sprintf("signature %s: %v", short(f.where), err))
	}
	return nil, verr
}

// check verifies one bundle against p.
func (p Policy) check(f found, digest []byte) (*Verified, error) {
	art := verify.WithArtifactDigest("sha256", digest)
	vc, err := f.bundle.VerificationContent()
	if err != nil {
		return nil, err
	}
	if vc.Certificate() == nil {
		// A key signature: try each trusted key.
		if len(p.Keys) == 0 {
			return nil, errors.New("signed with a key; the policy trusts no key")
		}
		var errs []string
		for _, k := range p.Keys {
			ver, err := p.keyVerifier(k)
			if err != nil {
				return nil, err
			}
			if _, err := ver.Verify(f.bundle, verify.NewPolicy(art, verify.WithKey())); err != nil {
				errs = append(errs, fmt.Sprintf("key %s: %v", KeyID(k), err))
				continue
			}
			return &Verified{KeyID: KeyID(k)}, nil
		}
		return nil, fmt.Errorf("signed with a key that is not trusted or over other content (%s)", strings.Join(errs, "; "))
	}
	if p.TrustedRoot == nil {
		return nil, errors.New("signed keylessly (a certificate); the policy has no trusted root, only keys")
	}
	ver, err := verify.NewVerifier(p.TrustedRoot, p.keylessOptions()...)
	if err != nil {
		return nil, err
	}
	return p.verifyCertified(ver, f.bundle, art, vc.Certificate())
}

// verifyCertified verifies a certificate-signed entity with ver under p's
// identities, naming the signer and the allowed identities on a mismatch,
// and returns the certified signer.
func (p Policy) verifyCertified(ver *verify.Verifier, entity verify.SignedEntity, art verify.ArtifactPolicyOption, cert *x509.Certificate) (*Verified, error) {
	opts := make([]verify.PolicyOption, 0, len(p.Identities))
	for _, id := range p.Identities {
		ci, err := id.sigstore()
		if err != nil {
			return nil, err
		}
		opts = append(opts, verify.WithCertificateIdentity(ci))
	}
	res, err := ver.Verify(entity, verify.NewPolicy(art, opts...))
	if err != nil {
		if cert != nil {
			if s, err2 := certificate.SummarizeCertificate(cert); err2 == nil {
				return nil, fmt.Errorf("%w (signed by %s %s %s from %s; allowed: %s)", err, s.SourceRepositoryURI, s.SourceRepositoryRef, s.BuildTrigger, s.Issuer, p.identities())
			}
		}
		return nil, err
	}
	v := &Verified{}
	if s := res.Signature; s != nil && s.Certificate != nil {
		c := s.Certificate
		v.Issuer, v.Subject, v.Repository, v.Ref, v.Commit, v.Run = c.Issuer, c.SubjectAlternativeName, c.SourceRepositoryURI, c.SourceRepositoryRef, c.SourceRepositoryDigest, c.RunInvocationURI
	}
	for _, ts := range res.VerifiedTimestamps {
		v.SignedAt = ts.Timestamp
	}
	return v, nil
}

func (p Policy) identities() string {
	s := make([]string, len(p.Identities))
	for i, id := range p.Identities {
		s[i] = "{" + id.String() + "}"
	}
	return strings.Join(s, " or ")
}

// keylessOptions: a trusted time from the log (and SCTs when the root has
// CT logs), or from a timestamp authority when the log is skipped.
func (p Policy) keylessOptions() []verify.VerifierOption {
	var o []verify.VerifierOption
	if p.SkipTransparencyLog {
		o = append(o, verify.WithSignedTimestamps(1))
	} else {
		o = append(o, verify.WithTransparencyLog(1), verify.WithObserverTimestamps(1))
	}
	if len(p.TrustedRoot.CTLogs()) > 0 {
		o = append(o, verify.WithSignedCertificateTimestamps(1))
	}
	return o
}

// keyVerifier verifies with key k; the log is required unless skipped.
func (p Policy) keyVerifier(k crypto.PublicKey) (*verify.Verifier, error) {
	sv, err := signature.LoadVerifier(k, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("trusted key %s: %w", KeyID(k), err)
	}
	km := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) {
		return root.NewExpiringKey(sv, time.Time{}, time.Time{}), nil
	})
	if p.SkipTransparencyLog {
		return verify.NewVerifier(km, verify.WithNoObserverTimestamps())
	}
	var tm root.TrustedMaterial = km
	if p.TrustedRoot != nil {
		tm = root.TrustedMaterialCollection{km, p.TrustedRoot}
	}
	return verify.NewVerifier(tm, verify.WithTransparencyLog(1), verify.WithIntegratedTimestamps(1))
}

// short is a digest's first 12 characters after sha256:.
func short(d string) string {
	if h, ok := strings.CutPrefix(d, "sha256:"); ok && len(h) > 12 {
		return "sha256:" + h[:12]
	}
	return d
}

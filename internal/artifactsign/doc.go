// Package artifactsign signs OCI artifacts and verifies their signatures
// with Sigstore, in the format cosign v3 writes and reads by default: a
// Sigstore bundle (v0.3) holding a DSSE envelope of an in-toto statement
// whose subject is the artifact's manifest digest (predicate
// https://sigstore.dev/cosign/sign/v1), stored in the registry as an OCI
// referrer of the artifact (artifactType BundleMediaType). What cosign
// signs, keyless verifies, and the other way round.
//
// Signing is with a key (a PEM private key, cosign's encrypted format
// included) or keyless: an ephemeral key whose certificate a Fulcio issues
// for the CI job's OIDC token, with a timestamp from a timestamp authority
// and/or an entry in a Rekor transparency log.
//
// Verification (github.com/sigstore/sigstore-go) asks for a Policy: the
// trusted keys, or a trusted root (Sigstore's public instance or a private
// Fulcio, Rekor and timestamp authority) and the certificate identities
// allowed to sign (issuer, subject, and the Fulcio extensions that name the
// pipeline: repository, ref, repository id, trigger). A transparency-log
// proof is required unless the policy says otherwise. What a registry sends
// is bounded (referrers, manifest and bundle sizes); a refusal names what
// did not match for each signature found.
package artifactsign

package artifactsign_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/keyless-cd/keyless/internal/artifactsign"
	"github.com/keyless-cd/keyless/internal/ciissuer"
	"github.com/keyless-cd/keyless/internal/oidc"
	"github.com/keyless-cd/keyless/internal/sigstoretest"
)

// TestSigstoreSignedCommits: a commit signed as gitsign signs (CMS with a
// Fulcio certificate from a real Fulcio, a real timestamp) by protected
// main's pipeline verifies under the policy's identities — the same rule as
// for artifacts; a feature branch's signature, a changed commit and a trusted
// root without the timestamp authority are refused.
func TestSigstoreSignedCommits(t *testing.T) {
	tr := newTrust(t)
	stack, ids := tr.sigstore(t)
	policy := artifactsign.Policy{TrustedRoot: stack.TrustedRoot, Identities: ids, SkipTransparencyLog: true}
	payload := []byte("tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor CI <ci@example.com> 1700000000 +0000\ncommitter CI <ci@example.com> 1700000000 +0000\n\nbump\n")
	signAs := func(job ciissuer.GitLabJob) []byte {
		t.Helper()
		sig, err := sigstoretest.GitsignSigner{Ctx: t.Context(), FulcioURL: stack.FulcioURL, TSAURL: stack.TimestampURL,
			IDToken: tr.token(t, job, oidc.SigstoreAudience)}.Sign(bytes.NewReader(payload))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(sig, []byte(artifactsign.GitsignHeader)) {
			t.Fatalf("not a gitsign signature: %.40q", sig)
		}
		return sig
	}
	good := signAs(protectedMain)
	v, err := artifactsign.VerifyCommit(payload, good, policy)
	if err != nil {
		t.Fatal(err)
	}
	if v.Ref != "refs/heads/main" || v.Repository != tr.issuer.URL()+"/myorg/myapp" || v.SignedAt.IsZero() {
		t.Errorf("verified %+v", v)
	}
	if _, err := artifactsign.VerifyCommit(append(payload, 'x'), good, policy); err == nil || !strings.Contains(err.Error(), "messageDigest") {
		t.Errorf("another commit with this signature: %v", err)
	}
	feature := protectedMain
	feature.Ref = "feature/x"
	if _, err := artifactsign.VerifyCommit(payload, signAs(feature), policy); err == nil || !strings.Contains(err.Error(), "refs/heads/feature/x") {
		t.Errorf("a feature branch's signature: %v", err)
	}
	noTSA := stack.TrustedRootWithoutTimestamps(t)
	if _, err := artifactsign.VerifyCommit(payload, good, artifactsign.Policy{TrustedRoot: noTSA, Identities: ids}); err == nil {
		t.Error("verified without a trusted timestamp")
	}
	if _, err := artifactsign.VerifyCommit(payload, []byte("-----BEGIN SIGNED MESSAGE-----\nAAAA\n-----END SIGNED MESSAGE-----\n"), policy); err == nil {
		t.Error("a malformed signature verified")
	}
	if _, err := artifactsign.VerifyCommit(payload, good, artifactsign.Policy{TrustedRoot: stack.TrustedRoot}); err == nil || errors.Is(err, artifactsign.ErrUnsigned) {
		t.Errorf("no identities: %v", err)
	}
}

package artifactsign_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/keyless-cd/keyless/internal/artifactsign"
	"github.com/keyless-cd/keyless/internal/ciissuer"
	"github.com/keyless-cd/keyless/internal/oidc"
	"github.com/keyless-cd/keyless/internal/sigstoretest"
)

// trust is a FederationPolicy trusting protected main of myorg/myapp (GitLab,
// project 42) to deploy into team-a, with its CI issuer running.
type trust struct {
	issuer *ciissuer.Issuer
	policy *oidc.FederationPolicy
	authn  []byte // the apiserver's AuthenticationConfiguration
}

func newTrust(t *testing.T) *trust {
	t.Helper()
	is, policy := sigstoretest.GitLabPolicy(t, "team-a", "")
	authn, err := policy.AuthenticationConfigurationYAML()
	if err != nil {
		t.Fatal(err)
	}
	return &trust{issuer: is, policy: policy, authn: authn}
}

// token is the CI job's token for audience aud.
func (tr *trust) token(t *testing.T, job ciissuer.GitLabJob, aud string) string {
	t.Helper()
	return sigstoretest.Token(t, tr.issuer, job, aud)
}

// sigstore starts a Fulcio configured from the policy and a timestamp
// authority, and returns them with the policy's identities for team-a.
func (tr *trust) sigstore(t *testing.T) (*sigstoretest.Stack, []artifactsign.Identity) {
	t.Helper()
	stack := sigstoretest.StartFor(t, tr.policy)
	ids, _, err := tr.policy.ArtifactIdentities("team-a")
	if err != nil {
		t.Fatal(err)
	}
	return stack, ids
}

var protectedMain = ciissuer.GitLabJob{ProjectPath: "myorg/myapp", ProjectID: 42, Ref: "main", RefProtected: true, PipelineID: 7, UserLogin: "alice"}

// TestOneTrustPolicy: the FederationPolicy that makes the apiserver's
// AuthenticationConfiguration also makes the Fulcio config and the
// artifact rule. A pipeline of protected main signs keylessly with a real
// Fulcio and timestamp authority → verified, naming the pipeline; a feature
// branch, an unprotected ref and a fork's merge request sign (Fulcio issues
// them certificates) → refused on the pull path, and their tokens are
// denied on the push path by the same policy.
func TestOneTrustPolicy(t *testing.T) {
	tr := newTrust(t)
	stack, ids := tr.sigstore(t)
	policy := artifactsign.Policy{TrustedRoot: stack.TrustedRoot, Identities: ids, SkipTransparencyLog: true}
	reg, repo := registry(t, "myorg/myapp")

	cases := []struct {
		name  string
		job   func(ciissuer.GitLabJob) ciissuer.GitLabJob
		allow bool
		why   string // in the pull path's refusal
	}{
		{"protected main", func(j ciissuer.GitLabJob) ciissuer.GitLabJob { return j }, true, ""},
		{"feature branch", func(j ciissuer.GitLabJob) ciissuer.GitLabJob { j.Ref = "feature/x"; return j }, false, "refs/heads/feature/x"},
		{"unprotected ref", func(j ciissuer.GitLabJob) ciissuer.GitLabJob { j.RefProtected = false; return j }, false, "unprotected:refs/heads/main"},
		{"fork merge request", func(j ciissuer.GitLabJob) ciissuer.GitLabJob {
			j.ProjectPath, j.ProjectID, j.RefProtected, j.PipelineSource = "mallory/myapp", 666, false, "merge_request_event"
			return j
		}, false, "mallory/myapp"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			job := c.job(protectedMain)
			art := artifact(t, repo, "build-"+string(rune('a'+i)), c.name)
			if _, err := artifactsign.Sign(t.Context(), repo, art, artifactsign.SignOptions{
				IDToken: tr.token(t, job, oidc.SigstoreAudience), FulcioURL: stack.FulcioURL, TimestampURLs: []string{stack.TimestampURL},
			}); err != nil {
				t.Fatalf("signing: %v", err)
			}
			v, err := artifactsign.Verify(t.Context(), client(t, reg, "myorg/myapp"), art, policy)
			_, pushErr := oidc.Check(t.Context(), oidc.CheckOptions{Config: tr.authn, Token: tr.token(t, job, "k8s-test"), JWKS: tr.issuer.JWKS()})
			if c.allow {
				if err != nil {
					t.Fatalf("pull path refused: %v", err)
				}
				if pushErr != nil {
					t.Fatalf("push path denied: %v", pushErr)
				}
				if v.Repository != tr.issuer.URL()+"/myorg/myapp" || v.Ref != "refs/heads/main" || !strings.HasSuffix(v.Run, "/-/jobs/71") || v.SignedAt.IsZero() {
					t.Errorf("verified identity %+v: want the pipeline of protected main, job 71, with a signed time", v)
				}
				return
			}
			t.Logf("pull path: %v", err)
			var verr *artifactsign.VerifyError
			if !errors.As(err, &verr) || !strings.Contains(err.Error(), c.why) {
				t.Errorf("pull path: %v, want refused naming %q", err, c.why)
			}
			if !errors.Is(pushErr, oidc.ErrDenied) {
				t.Errorf("push path: %v, want denied by the same policy", pushErr)
			}
		})
	}
}

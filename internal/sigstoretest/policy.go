package sigstoretest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/keyless-cd/keyless/internal/ciissuer"
	"github.com/keyless-cd/keyless/internal/oidc"
)

// GitLabPolicy starts a CI issuer (internal/ciissuer: GitLab-shaped
// tokens, HTTPS with its own CA, stopped when the test ends) and returns it
// with the FederationPolicy trusting protected main of myorg/myapp (project
// 42) to deploy into namespace, its issuer's audience k8s-test; extra is
// appended to the policy (e.g. "artifacts: {transparencyLog: Skip}\n").
func GitLabPolicy(tb testing.TB, namespace, extra string) (*ciissuer.Issuer, *oidc.FederationPolicy) {
	tb.Helper()
	is, err := ciissuer.Start()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(is.Stop)
	ca := filepath.Join(tb.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, is.CAPEM(), 0o600); err != nil {
		tb.Fatal(err)
	}
	policy, err := oidc.ParsePolicy("policy.yaml", []byte(`apiVersion: keyless.dev/v1alpha1
kind: FederationPolicy
issuers:
- {name: gitlab, provider: gitlab, url: "`+is.URL()+`", audience: k8s-test, certificateAuthorityFile: "`+ca+`"}
pipelines:
- {issuer: gitlab, project: myorg/myapp, projectID: "42", refs: [main], namespace: `+namespace+`}
`+extra))
	if err != nil {
		tb.Fatal(err)
	}
	return is, policy
}

// StartFor runs the Fulcio policy configures (FulcioConfig) and a timestamp
// authority.
func StartFor(tb testing.TB, policy *oidc.FederationPolicy) *Stack {
	tb.Helper()
	cfg, err := policy.FulcioConfig()
	if err != nil {
		tb.Fatal(err)
	}
	return Start(tb, cfg)
}

// Token is is's token of job for audience aud.
func Token(tb testing.TB, is *ciissuer.Issuer, job ciissuer.GitLabJob, aud string) string {
	tb.Helper()
	job.Audience = aud
	tok, err := is.Sign(ciissuer.GitLabClaims(job))
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

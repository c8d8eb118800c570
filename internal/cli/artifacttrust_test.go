package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyless-cd/keyless/internal/ciissuer"
	"github.com/keyless-cd/keyless/internal/oidc"
	"github.com/keyless-cd/keyless/internal/registrytest"
	"github.com/keyless-cd/keyless/internal/sigstoretest"
)

// TestSignedPublishAndCheck: from one policy file, keyless oidc config
// --format fulcio configures a real Fulcio; a GitLab job publishes with
// --sign (its id_tokens variable SIGSTORE_ID_TOKEN); keyless oidc check
// --artifact accepts protected main's artifact naming the pipeline and
// refuses a feature branch's, saying what did not match; --format
// artifact-rule prints the rule.
func TestSignedPublishAndCheck(t *testing.T) {
	is, err := ciissuer.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(is.Stop)
	dir := t.TempDir()
	ca, policy := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "keyless-oidc.yaml")
	if err := os.WriteFile(ca, is.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(policy, []byte(`apiVersion: keyless.dev/v1alpha1
kind: FederationPolicy
issuers:
- {name: gitlab, provider: gitlab, url: "`+is.URL()+`", audience: k8s-test, certificateAuthorityFile: "`+ca+`"}
pipelines:
- {issuer: gitlab, project: myorg/myapp, projectID: "42", refs: [main], namespace: team-a}
artifacts: {transparencyLog: Skip}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, fulcioConfig, errOut := run(t.Context(), t, "oidc", "config", "--policy", policy, "--format", "fulcio")
	if code != 0 {
		t.Fatalf("oidc config --format fulcio: exit %d: %s", code, errOut)
	}
	stack := sigstoretest.Start(t, []byte(fulcioConfig))
	code, rule, errOut := run(t.Context(), t, "oidc", "config", "--policy", policy, "--format", "artifact-rule")
	if code != 0 || !strings.Contains(rule, "team-a:") || !strings.Contains(rule, "ref: refs/heads/main") || !strings.Contains(rule, "repositoryID: \"42\"") || !strings.Contains(rule, "transparencyLog: Skip") {
		t.Fatalf("oidc config --format artifact-rule: exit %d\n%s%s", code, rule, errOut)
	}

	reg := registrytest.StartWith(t, registrytest.Binary(t), registrytest.Options{Username: "gitlab-ci-token", Password: "job-token"})
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "cm.yaml"), []byte("kind: ConfigMap\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"GITLAB_CI": "true", "GITHUB_ACTIONS": "", "CI_REGISTRY": reg.Host, "CI_REGISTRY_USER": "gitlab-ci-token", "CI_REGISTRY_PASSWORD": "job-token"} {
		t.Setenv(k, v)
	}
	publishAs := func(job ciissuer.GitLabJob, tag string) string {
		t.Helper()
		job.Audience = oidc.SigstoreAudience
		tok, err := is.Sign(ciissuer.GitLabClaims(job))
		if err != nil {
			t.Fatal(err)
		}
		t.Setenv("SIGSTORE_ID_TOKEN", tok)
		ref := "oci://" + reg.Host + "/myorg/myapp:" + tag
		code, out, errOut := run(t.Context(), t, "publish", src, ref, "--allow-insecure-http", "--sign",
			"--fulcio-url", stack.FulcioURL, "--timestamp-url", stack.TimestampURL, "--rekor-url", "")
		if code != 0 || !strings.Contains(errOut, "signed (") {
			t.Fatalf("publish --sign: exit %d\n%s%s", code, out, errOut)
		}
		return strings.TrimSpace(out)
	}
	check := func(ref string) (int, string, string) {
		return run(t.Context(), t, "oidc", "check", "--artifact", ref, "--policy", policy, "--namespace", "team-a",
			"--trusted-root", stack.TrustedRootPath, "--allow-insecure-http")
	}
	main := ciissuer.GitLabJob{ProjectPath: "myorg/myapp", ProjectID: 42, Ref: "main", RefProtected: true, PipelineID: 3}
	good := publishAs(main, "good")
	if code, out, errOut := check(good); code != 0 || !strings.Contains(out, "allowed: signed by "+is.URL()+"/myorg/myapp refs/heads/main") {
		t.Fatalf("oidc check --artifact of protected main's: exit %d\n%s%s", code, out, errOut)
	}
	// Other content: the same files would be the same digest, which
	// protected main's signature already covers.
	if err := os.WriteFile(filepath.Join(src, "cm.yaml"), []byte("kind: ConfigMap\nmetadata: {name: feature}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	feature := main
	feature.Ref = "feature/x"
	bad := publishAs(feature, "bad")
	if code, out, errOut := check(bad); code != 1 || !strings.Contains(errOut, `got "refs/heads/feature/x"`) {
		t.Fatalf("oidc check --artifact of a feature branch's: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := check(good + "x"); code == 0 || code == 1 {
		t.Fatalf("a malformed reference: exit %d (want 2, an error)\n%s", code, errOut)
	}
}

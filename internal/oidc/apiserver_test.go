package oidc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/keyless-cd/keyless/internal/ciissuer"
	"github.com/keyless-cd/keyless/internal/localcluster"
	"github.com/keyless-cd/keyless/internal/localcluster/clustertest"
)

// whoami asks the real apiserver who a token is (SelfSubjectReview).
func whoami(t *testing.T, c *localcluster.Cluster, token string) (string, error) {
	t.Helper()
	cfg := &rest.Config{Host: c.Config.Host, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAData: c.Config.CAData}}
	r, err := kubernetes.NewForConfigOrDie(cfg).AuthenticationV1().SelfSubjectReviews().Create(t.Context(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return r.Status.UserInfo.Username, nil
}

// TestTokensAgainstARealAPIServer: the configuration generated from a policy
// makes a real kube-apiserver accept exactly the trusted pipelines' tokens.
func TestTokensAgainstARealAPIServer(t *testing.T) {
	gitlab, err := ciissuer.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer gitlab.Stop()
	github, err := ciissuer.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer github.Stop()
	dir := t.TempDir()
	for name, is := range map[string]*ciissuer.Issuer{"gitlab": gitlab, "github": github} {
		if err := os.WriteFile(filepath.Join(dir, name+"-ca.pem"), is.CAPEM(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	policy := fmt.Sprintf(`apiVersion: keyless.dev/v1alpha1
kind: FederationPolicy
issuers:
- {name: gitlab, provider: gitlab, url: %q, audience: k8s-test, certificateAuthorityFile: %q}
- {name: github, provider: github, url: %q, audience: k8s-test, certificateAuthorityFile: %q}
pipelines:
- {issuer: gitlab, project: myorg/myapp, projectID: "4242", refs: [main], namespace: myapp}
- {issuer: github, project: myorg/myapp, projectID: "99", environment: production, namespace: myapp}
`, gitlab.URL(), filepath.Join(dir, "gitlab-ca.pem"), github.URL(), filepath.Join(dir, "github-ca.pem"))
	p, err := ParsePolicy("policy.yaml", []byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	authn, err := p.AuthenticationConfigurationYAML()
	if err != nil {
		t.Fatal(err)
	}
	authnFile := filepath.Join(dir, "authn.yaml")
	if err := os.WriteFile(authnFile, authn, 0o600); err != nil {
		t.Fatal(err)
	}
	c := clustertest.Start(t, localcluster.Options{APIServerArgs: []string{"--authentication-config=" + authnFile}})

	job := ciissuer.GitLabJob{ProjectPath: "myorg/myapp", ProjectID: 4242, Ref: "main", RefProtected: true, Audience: "k8s-test", PipelineID: 1}
	good, err := gitlab.Sign(ciissuer.GitLabClaims(job))
	if err != nil {
		t.Fatal(err)
	}
	// The authenticator loads the issuer's keys asynchronously after start.
	var user string
	deadline := time.Now().Add(60 * time.Second)
	for {
		if user, err = whoami(t, c, good); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("a main-branch protected token was refused: %v", err)
	}
	if user != "gitlab:project_path:myorg/myapp:ref_type:branch:ref:main" || user != p.Usernames(p.Pipelines[0])[0] {
		t.Fatalf("username %q", user)
	}

	ghGood, err := github.Sign(ciissuer.GitHubClaims(ciissuer.GitHubJob{Repository: "myorg/myapp", RepositoryID: 99, Ref: "refs/heads/main", Environment: "production", Audience: "k8s-test", Workflow: ".github/workflows/deploy.yml"}))
	if err != nil {
		t.Fatal(err)
	}
	if user, err := whoami(t, c, ghGood); err != nil || user != "github:repo:myorg/myapp:environment:production" {
		t.Fatalf("GitHub environment token: %q %v", user, err)
	}

	mutate := func(f func(*ciissuer.GitLabJob)) map[string]any {
		j := job
		f(&j)
		return ciissuer.GitLabClaims(j)
	}
	sign := func(claims map[string]any) string {
		tok, err := gitlab.Sign(claims)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	wrongIssuer := ciissuer.GitLabClaims(job)
	wrongIssuer["iss"] = "https://gitlab.evil.example.com"
	forged, _ := gitlab.SignWithOtherKey(ciissuer.GitLabClaims(job))
	none, _ := gitlab.Unsigned(ciissuer.GitLabClaims(job))
	systemSub := ciissuer.GitLabClaims(job)
	systemSub["sub"] = "system:admin"
	expiredIssuer := *gitlab
	expiredIssuer.Now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	expired, _ := expiredIssuer.Sign(ciissuer.GitLabClaims(job))
	ghOther, _ := github.Sign(ciissuer.GitHubClaims(ciissuer.GitHubJob{Repository: "myorg/myapp", RepositoryID: 99, Ref: "refs/heads/main", Environment: "staging", Audience: "k8s-test"}))

	for name, tok := range map[string]string{
		"feature branch":              sign(mutate(func(j *ciissuer.GitLabJob) { j.Ref = "feature/x" })),
		"unprotected ref":             sign(mutate(func(j *ciissuer.GitLabJob) { j.RefProtected = false })),
		"same path, other project id": sign(mutate(func(j *ciissuer.GitLabJob) { j.ProjectID = 5555 })),
		"fork (other project path)":   sign(mutate(func(j *ciissuer.GitLabJob) { j.ProjectPath = "mallory/myapp" })),
		"tag instead of branch":       sign(mutate(func(j *ciissuer.GitLabJob) { j.RefType = "tag" })),
		"wrong audience":              sign(mutate(func(j *ciissuer.GitLabJob) { j.Audience = "other" })),
		"wrong issuer":                sign(wrongIssuer),
		"expired":                     expired,
		"forged signature":            forged,
		"alg none":                    none,
		"system: username":            sign(systemSub),
		"GitHub: other environment":   ghOther,
	} {
		t.Run(name, func(t *testing.T) {
			user, err := whoami(t, c, tok)
			if err == nil {
				t.Fatalf("accepted as %q", user)
			}
			var status *apierrors.StatusError
			if !errors.As(err, &status) || (!apierrors.IsUnauthorized(err) && !apierrors.IsForbidden(err)) {
				t.Fatalf("want 401/403, got %v", err)
			}
		})
	}
}

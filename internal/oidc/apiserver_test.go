package oidc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/keyless-cd/keyless/internal/ciissuer"
	"github.com/keyless-cd/keyless/internal/engine"
	"github.com/keyless-cd/keyless/internal/localcluster"
	"github.com/keyless-cd/keyless/internal/localcluster/clustertest"
	"github.com/keyless-cd/keyless/internal/render"
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
- {issuer: gitlab, project: myorg/myapp, projectID: "4242", refs: [main], namespace: myapp, manifests: deploy}
- {issuer: github, project: myorg/myapp, projectID: "99", environment: production, namespace: myapp, manifests: deploy}
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

	// keyless oidc check agrees with the live apiserver, offline (JWKS) and
	// online (discovery through the configured CA).
	for _, jwks := range [][]byte{gitlab.JWKS(), nil} {
		res, err := Check(t.Context(), CheckOptions{Config: authn, Token: good, JWKS: jwks})
		if err != nil || res.Username != user {
			t.Fatalf("check of the accepted token: %+v %v", res, err)
		}
	}
	claims := ciissuer.GitLabClaims(job)
	claims["iss"] = gitlab.URL()
	if res, err := Check(t.Context(), CheckOptions{Config: authn, Claims: claims}); err != nil || res.Username != user {
		t.Fatalf("check --claims: %+v %v", res, err)
	}
	claims["ref_protected"] = "false"
	if _, err := Check(t.Context(), CheckOptions{Config: authn, Claims: claims}); !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), "not from a pipeline trusted") {
		t.Fatalf("check --claims of an unprotected ref: %v", err)
	}

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
			if res, err := Check(t.Context(), CheckOptions{Config: authn, Token: tok, JWKS: jwksFor(tok, gitlab, github)}); !errors.Is(err, ErrDenied) {
				t.Fatalf("keyless oidc check accepts what the apiserver refuses: %+v %v", res, err)
			}
		})
	}
}

// TestDeployWithACIToken: keyless deploy's use case against a real apiserver
// configured from the policy, with the RBAC generated from the manifests.
func TestDeployWithACIToken(t *testing.T) {
	ctx := t.Context()
	gitlab, err := ciissuer.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer gitlab.Stop()
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, gitlab.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := ParsePolicy("policy.yaml", []byte(fmt.Sprintf(`apiVersion: keyless.dev/v1alpha1
kind: FederationPolicy
issuers:
- {name: gitlab, provider: gitlab, url: %q, audience: k8s-test, certificateAuthorityFile: %q}
pipelines:
- {issuer: gitlab, project: myorg/myapp, projectID: "4242", refs: [main], namespace: myapp, manifests: deploy}
`, gitlab.URL(), caFile)))
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
	admin := kubernetes.NewForConfigOrDie(c.Config)
	for _, ns := range []string{"myapp", "other"} {
		if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	roles, bindings, err := p.RBAC(ctx, RBACOptions{Root: "testdata"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range roles {
		for _, rule := range r.Rules {
			for _, res := range rule.Resources {
				if res == "secrets" || res == "*" {
					t.Fatalf("the Role grants %s although the manifests have none: %+v", res, r.Rules)
				}
			}
		}
		if _, err := admin.RbacV1().Roles(r.Namespace).Create(ctx, r, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range bindings {
		if _, err := admin.RbacV1().RoleBindings(b.Namespace).Create(ctx, b, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	res, err := render.Render(ctx, render.Options{Root: "testdata", Path: "deploy", Namespace: "myapp"})
	if err != nil {
		t.Fatal(err)
	}
	job := ciissuer.GitLabJob{ProjectPath: "myorg/myapp", ProjectID: 4242, Ref: "main", RefProtected: true, Audience: "k8s-test"}
	token, _ := gitlab.Sign(ciissuer.GitLabClaims(job))
	target := Target{Server: c.Config.Host, CAData: c.Config.CAData, Token: token}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err = WhoAmI(ctx, target); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	// The RBAC authorizer sees the new Role asynchronously: allow it a moment.
	var user string
	var out *engine.Result
	for deadline := time.Now().Add(10 * time.Second); ; {
		user, out, err = Deploy(ctx, target, res.Objects, engine.ApplyOptions{Namespace: "myapp", Name: "deploy", Prune: true, Wait: time.Minute}, nil)
		if err == nil || !apierrors.IsForbidden(err) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	if user != "gitlab:project_path:myorg/myapp:ref_type:branch:ref:main" || out.Count(engine.ActionCreated) != 2 {
		t.Fatalf("deploy as %q: %+v", user, out)
	}
	if _, err := admin.BatchV1().Jobs("myapp").Get(ctx, "migrate", metav1.GetOptions{}); err != nil {
		t.Fatalf("migration Job not created: %v", err)
	}

	t.Run("feature branch token is refused with an explanation", func(t *testing.T) {
		j := job
		j.Ref = "feature/x"
		tok, _ := gitlab.Sign(ciissuer.GitLabClaims(j))
		_, _, err := Deploy(ctx, Target{Server: c.Config.Host, CAData: c.Config.CAData, Token: tok}, res.Objects, engine.ApplyOptions{Namespace: "myapp", Name: "deploy"}, nil)
		if err == nil || !apierrors.IsUnauthorized(err) || !strings.Contains(err.Error(), "did not accept the token") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("another namespace is forbidden", func(t *testing.T) {
		other, _ := render.Render(ctx, render.Options{Root: "testdata", Path: "deploy", Namespace: "other"})
		_, _, err := Deploy(ctx, target, other.Objects, engine.ApplyOptions{Namespace: "other", Name: "deploy"}, nil)
		if err == nil || !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `in the namespace "other"`) || !strings.Contains(err.Error(), "FederationPolicy entry") {
			t.Fatalf("got %v", err)
		}
		if _, err := admin.CoreV1().ConfigMaps("other").Get(ctx, "migrate-config", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("object written into another namespace: %v", err)
		}
	})
	t.Run("a kind outside the Role is forbidden and nothing is applied", func(t *testing.T) {
		secret := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "sneaky"}, "stringData": map[string]any{"a": "b"}}}
		cm := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "new-config"}}}
		_, _, err := Deploy(ctx, target, append(res.Objects, secret, cm), engine.ApplyOptions{Namespace: "myapp", Name: "deploy"}, nil)
		if err == nil || !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "secrets") || !strings.Contains(err.Error(), "keyless oidc rbac") {
			t.Fatalf("got %v", err)
		}
		if _, err := admin.CoreV1().ConfigMaps("myapp").Get(ctx, "new-config", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("part of a refused set was applied: %v", err)
		}
	})
}

// jwksFor picks the keys of the issuer a token names (GitHub's or GitLab's).
func jwksFor(tok string, gitlab, github *ciissuer.Issuer) []byte {
	if iss, _ := unverifiedIssuer(tok); iss == github.URL() {
		return github.JWKS()
	}
	return gitlab.JWKS()
}

package oidc

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPolicyValidationReportsEverythingAtOnce(t *testing.T) {
	bad := `apiVersion: keyless.dev/v1alpha1
kind: FederationPolicy
issuers:
- name: gitlab
  provider: gitlab
  url: https://gitlab.example.com
  audiance: typo
- name: gitlab
  provider: gitlab
  url: https://gitlab2.example.com
  audience: k8s
pipelines:
- issuer: gitlab
  project: myorg/myapp
  refs: [main]
  namespace: myapp
  colour: blue
`
	_, err := ParsePolicy("policy.yaml", []byte(bad))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		"policy.yaml",
		"issuers[0].audiance: unknown field",
		"pipelines[0].colour: unknown field",
		"issuers[0].audience: required",
		`issuers[1].name: duplicate issuer "gitlab"`,
		"pipelines[0].projectID: required",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

func TestAuthenticationConfigurationShape(t *testing.T) {
	p, err := ParsePolicy("p.yaml", []byte(`apiVersion: keyless.dev/v1alpha1
kind: FederationPolicy
issuers:
- {name: gitlab, provider: gitlab, url: "https://gitlab.example.com", audience: k8s-prod}
pipelines:
- {issuer: gitlab, project: myorg/myapp, projectID: "4242", refs: [main], namespace: myapp}
- {issuer: gitlab, project: myorg/tools, projectID: "7", refs: [main, release], protectedOnly: false, namespace: tools}
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := p.AuthenticationConfiguration()
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.JWT) != 1 {
		t.Fatalf("jwt entries: %d", len(cfg.JWT))
	}
	rule := cfg.JWT[0].ClaimValidationRules[0].Expression
	for _, want := range []string{`claims.project_id == "4242"`, `claims.ref_protected == "true"`, `claims.project_id == "7"`, `claims.ref in ["main", "release"]`, " || "} {
		if !strings.Contains(rule, want) {
			t.Errorf("rule lacks %q: %s", want, rule)
		}
	}
	if got := p.Usernames(p.Pipelines[0]); len(got) != 1 || got[0] != "gitlab:project_path:myorg/myapp:ref_type:branch:ref:main" {
		t.Errorf("usernames %v", got)
	}
}

// TestRBACIsAsSmallAsTheManifests: resourceNames on every verb that takes
// them, no list/watch (so never on Secrets), and no cluster-scoped kind.
func TestRBACIsAsSmallAsTheManifests(t *testing.T) {
	root := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("app/secret.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\n")
	write("app/deploy.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n")
	write("bad/ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: myapp}\n")
	policy := func(manifests string) *FederationPolicy {
		p, err := ParsePolicy("policy.yaml", []byte(`apiVersion: keyless.dev/v1alpha1
kind: FederationPolicy
issuers:
- {name: gitlab, provider: gitlab, url: "https://gitlab.example.com", audience: k8s}
pipelines:
- {issuer: gitlab, project: myorg/myapp, projectID: "42", refs: [main], namespace: myapp, manifests: `+manifests+`}
`))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	roles, _, err := policy("app").RBAC(t.Context(), RBACOptions{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range roles[0].Rules {
		for _, v := range r.Verbs {
			if v == "list" || v == "watch" || v == "*" {
				t.Errorf("rule %+v grants %s", r, v)
			}
			if v != "create" && len(r.ResourceNames) == 0 {
				t.Errorf("rule %+v grants %s without resourceNames", r, v)
			}
		}
		if r.Resources[0] == "secrets" && len(r.ResourceNames) > 0 && strings.Join(r.ResourceNames, ",") != "db" {
			t.Errorf("secrets rule names %v, want only db", r.ResourceNames)
		}
	}
	if _, _, err := policy("bad").RBAC(t.Context(), RBACOptions{Root: root}); !errors.Is(err, ErrClusterScoped) || !strings.Contains(err.Error(), "Namespace/myapp") {
		t.Fatalf("a Namespace manifest: err = %v, want ErrClusterScoped naming it", err)
	}
}

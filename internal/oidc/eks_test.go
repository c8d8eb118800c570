package oidc

import (
	"strings"
	"testing"
)

func TestEKSListsWhatItCannotExpress(t *testing.T) {
	p, err := ParsePolicy("p.yaml", []byte(`apiVersion: keyless.dev/v1alpha1
kind: FederationPolicy
issuers:
- {name: gitlab, provider: gitlab, url: "https://gitlab.example.com", audience: k8s-prod}
- {name: github, provider: github, url: "https://token.actions.githubusercontent.com", audience: k8s-prod}
pipelines:
- {issuer: gitlab, project: myorg/myapp, projectID: "4242", refs: [main], namespace: myapp}
- {issuer: github, project: myorg/a, projectID: "1", environment: production, namespace: a}
- {issuer: github, project: myorg/b, projectID: "2", environment: production, namespace: b}
`))
	if err != nil {
		t.Fatal(err)
	}
	cfgs, lost := p.EKS()
	if len(cfgs) != 2 {
		t.Fatalf("configs %+v", cfgs)
	}
	gl := cfgs[0].RequiredClaims
	if gl["project_id"] != "4242" || gl["ref"] != "main" || gl["ref_protected"] != "true" || cfgs[0].UsernamePrefix != "gitlab:" || cfgs[0].ClientID != "k8s-prod" {
		t.Errorf("gitlab config %+v", cfgs[0])
	}
	if cfgs[1].RequiredClaims != nil {
		t.Errorf("two GitHub pipelines cannot be ORed; no rule expected, got %v", cfgs[1].RequiredClaims)
	}
	joined := strings.Join(lost, "\n")
	if !strings.Contains(joined, "issuer github: 2 pipelines") || !strings.Contains(joined, "cannot pin the form of sub") {
		t.Errorf("lost:\n%s", joined)
	}
}

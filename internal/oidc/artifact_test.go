package oidc

import (
	"os"
	"path/filepath"
	"testing"
)

// TestForController: the policy as keyless install mounts it reads back
// with LoadPolicy from the mounted folder: CA files beside it, their
// paths rewritten, the rules unchanged.
func TestForController(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "gitlab-ca.pem")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := ParsePolicy("p.yaml", []byte(`apiVersion: keyless.dev/v1alpha1
kind: FederationPolicy
issuers:
- {name: gitlab, provider: gitlab, url: "https://gitlab.example.com", audience: k8s, certificateAuthorityFile: "`+ca+`"}
pipelines:
- {issuer: gitlab, project: myorg/myapp, projectID: "42", refs: [main], namespace: team-a}
artifacts: {transparencyLog: Skip}
`))
	if err != nil {
		t.Fatal(err)
	}
	mounted := t.TempDir()
	files, err := p.ForController(mounted)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(mounted, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	back, err := LoadPolicy(filepath.Join(mounted, "policy.yaml"))
	if err != nil {
		t.Fatalf("the mounted policy does not load: %v\n%s", err, files["policy.yaml"])
	}
	if got := back.Issuers[0].CertificateAuthorityFile; got != filepath.Join(mounted, "ca-gitlab.pem") {
		t.Errorf("CA path %q", got)
	}
	if p.Issuers[0].CertificateAuthorityFile != ca {
		t.Error("ForController changed the policy it was given")
	}
	want, _, _ := p.ArtifactIdentities("team-a")
	got, _, _ := back.ArtifactIdentities("team-a")
	if len(got) != 1 || got[0] != want[0] || !back.SkipTransparencyLog() {
		t.Errorf("rules after mounting: %+v (log skipped %v), want %+v", got, back.SkipTransparencyLog(), want)
	}
}

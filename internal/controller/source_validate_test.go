package controller

import (
	"strings"
	"testing"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

// TestValidateVerify: which spec.source.verify shapes a source takes.
func TestValidateVerify(t *testing.T) {
	approvals := &kv1.ForgeApprovals{MinApprovers: 2, Provider: kv1.ForgeGitea, SecretRef: kv1.LocalObjectReference{Name: "forge"}}
	keys := &kv1.LocalObjectReference{Name: "keys"}
	cases := map[string]struct {
		repo   string
		verify *kv1.VerifySource
		refuse string
	}{
		"git, approvals alone":          {"https://git.example/a/b.git", &kv1.VerifySource{Approvals: approvals}, ""},
		"git, signatures and approvals": {"https://git.example/a/b.git", &kv1.VerifySource{Mode: "head", SecretRef: keys, Approvals: approvals}, ""},
		"git, mode head without keys":   {"https://git.example/a/b.git", &kv1.VerifySource{Mode: "head", Approvals: approvals}, "set mode: head and secretRef"},
		"git, keys without mode":        {"https://git.example/a/b.git", &kv1.VerifySource{SecretRef: keys}, "set mode: head"},
		"artifact, approvals": {"oci://registry.example/a/b", &kv1.VerifySource{Provider: kv1.VerifyProviderCosign, SecretRef: keys, Approvals: approvals},
			"an OCI artifact has none"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			app := &kv1.Application{Spec: kv1.ApplicationSpec{Source: kv1.ApplicationSource{RepoURL: tc.repo, TargetRevision: "main", Verify: tc.verify}}}
			err := validateSource(app)
			switch {
			case tc.refuse == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.refuse != "" && (err == nil || !strings.Contains(err.Error(), tc.refuse)):
				t.Errorf("err %v, want a refusal saying %q", err, tc.refuse)
			}
		})
	}
}

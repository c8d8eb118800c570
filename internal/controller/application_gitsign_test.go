package controller_test

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/ciissuer"
	"github.com/keyless-cd/keyless/internal/oidc"
	"github.com/keyless-cd/keyless/internal/sigstoretest"
)

// TestVerifyGitsignCommits: spec.source.verify mode head with
// matchIdentities — the rule `keyless oidc config --format artifact-rule`
// prints from the FederationPolicy — accepts a commit signed with gitsign
// (a real Fulcio and timestamp authority, the CI job's token) by protected
// main's pipeline, recording it, and refuses one signed by a feature
// branch's pipeline, the applied state running.
func TestVerifyGitsignCommits(t *testing.T) {
	is, policy := sigstoretest.GitLabPolicy(t, appNS, "")
	stack := sigstoretest.StartFor(t, policy)
	ids, _, err := policy.ArtifactIdentities(appNS)
	if err != nil {
		t.Fatal(err)
	}
	var match []kv1.SigningIdentity
	for _, id := range ids {
		match = append(match, kv1.SigningIdentity{Issuer: id.Issuer, Repository: id.SourceRepositoryURI, RepositoryID: id.SourceRepositoryIdentifier, Ref: id.SourceRepositoryRef})
	}
	signer := func(job ciissuer.GitLabJob) sigstoretest.GitsignSigner {
		return sigstoretest.GitsignSigner{Ctx: t.Context(), FulcioURL: stack.FulcioURL, TSAURL: stack.TimestampURL, IDToken: sigstoretest.Token(t, is, job, oidc.SigstoreAudience)}
	}

	e := newEnv(t)
	roots := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sigstore-root", Namespace: appNS}, Data: map[string][]byte{"trusted_root.json": stack.TrustedRootJSON}}
	if err := e.admin.Create(t.Context(), roots); err != nil {
		t.Fatal(err)
	}
	e.startController(time.Hour)
	main := ciissuer.GitLabJob{ProjectPath: "myorg/myapp", ProjectID: 42, Ref: "main", RefProtected: true, PipelineID: 5}
	e.pushSigned(manifests("registry.example.com/web:1.0", "signed by main"), nil, "bump by CI", nil, signer(main))
	app := &kv1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: appNS},
		Spec: kv1.ApplicationSpec{
			Source: kv1.ApplicationSource{RepoURL: e.git.RepoURL(repoName), TargetRevision: "main", Path: "deploy",
				SecretRef: &kv1.LocalObjectReference{Name: "myapp-git"},
				Verify:    &kv1.VerifySource{Mode: "head", SecretRef: &kv1.LocalObjectReference{Name: "sigstore-root"}, MatchIdentities: match}},
			SyncPolicy: &kv1.SyncPolicy{Automated: &kv1.AutomatedSyncPolicy{Prune: true}},
			Interval:   &metav1.Duration{Duration: 5 * time.Second},
		},
	}
	if err := e.admin.Create(t.Context(), app); err != nil {
		t.Fatal(err)
	}
	got := e.waitApp("web", "Ready with main's signed commit", 60*time.Second, ready)
	if h := got.Status.History; len(h) == 0 || !strings.Contains(h[0].Signer, is.URL()+"/myorg/myapp refs/heads/main") {
		t.Fatalf("history %+v: want the signer of protected main recorded", h)
	}
	applied := got.Status.LastAppliedRevision

	feature := main
	feature.Ref = "feature/x"
	bad := e.pushSigned(manifests("registry.example.com/web:1.0", "signed by a feature branch"), nil, "sneaky", nil, signer(feature))
	e.waitApp("web", "refusing the feature branch's signature", 60*time.Second, func(a *kv1.Application) bool {
		s := condition(a, kv1.StalledCondition)
		return strings.Contains(s, "VerificationFailed") && strings.Contains(s, bad[:7]) && strings.Contains(s, "refs/heads/feature/x")
	})
	if a := e.app("web"); a.Status.LastAppliedRevision != applied {
		t.Fatalf("after a refused commit: applied %s, want %s still", a.Status.LastAppliedRevision, applied)
	}
}

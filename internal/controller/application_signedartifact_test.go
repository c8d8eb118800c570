package controller_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/artifactsign"
	"github.com/keyless-cd/keyless/internal/ciissuer"
	"github.com/keyless-cd/keyless/internal/oidc"
	"github.com/keyless-cd/keyless/internal/publish"
	"github.com/keyless-cd/keyless/internal/sigstoretest"
)

// publishSigned publishes ConfigMap name=v to ref, signed with sign.
func publishSigned(t *testing.T, reg publish.RegistryOptions, ref, name, v string, sign *artifactsign.SignOptions) string {
	t.Helper()
	return publishCM(t, reg, ref, name, v, func(o *publish.Options) { o.Sign = sign })
}

// promote moves tag to ref's artifact.
func promote(t *testing.T, reg publish.RegistryOptions, ref, tag string) {
	t.Helper()
	from, err := publish.ParseRef(ref)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := publish.Promote(t.Context(), from, tag, reg); err != nil {
		t.Fatal(err)
	}
}

// refusedFor waits for app to be refused with reason VerificationFailed
// naming want, with the ConfigMap still at keep.
func (e *env) refusedFor(app, want, cm, keep string) {
	e.t.Helper()
	e.waitApp(app, "refused: "+want, 60*time.Second, func(a *kv1.Application) bool {
		c := apimeta.FindStatusCondition(a.Status.Conditions, kv1.ReadyCondition)
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == kv1.ReasonVerificationFailed && strings.Contains(c.Message, want)
	})
	if v := e.configMapValue(cm); v != keep {
		e.t.Fatalf("after a refused artifact: ConfigMap %s = %q, want %q still running", cm, v, keep)
	}
}

// TestArtifactSignedWithAKey: spec.source.verify (cosign) with a Secret of
// trusted keys: an artifact signed with the key is applied and history
// names the key; one signed with another key, and an unsigned one, are
// refused before they are fetched, the last good state running.
func TestArtifactSignedWithAKey(t *testing.T) {
	e := newEnv(t)
	e.startController(time.Hour)
	reg, login := artifactRegistry(t, e)
	repoURL := "oci://" + reg.Host + "/team/app"
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := cryptoutils.MarshalPublicKeyToPEM(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "cosign-keys", Namespace: appNS}, Data: map[string][]byte{"ci.pub": pub}}
	if err := e.admin.Create(t.Context(), secret); err != nil {
		t.Fatal(err)
	}
	publishSigned(t, login, repoURL+":build-1", "signed", "1", &artifactsign.SignOptions{Key: key})
	promote(t, login, repoURL+":build-1", "stable")
	app := &kv1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: "signed", Namespace: appNS},
		Spec: kv1.ApplicationSpec{
			Source: kv1.ApplicationSource{RepoURL: repoURL, TargetRevision: "stable", SecretRef: &kv1.LocalObjectReference{Name: "registry-login"},
				Verify: &kv1.VerifySource{Provider: kv1.VerifyProviderCosign, SecretRef: &kv1.LocalObjectReference{Name: "cosign-keys"}, TransparencyLog: kv1.TransparencyLogSkip}},
			SyncPolicy: &kv1.SyncPolicy{Automated: &kv1.AutomatedSyncPolicy{Prune: true}},
			Interval:   &metav1.Duration{Duration: 5 * time.Second},
		},
	}
	if err := e.admin.Create(t.Context(), app); err != nil {
		t.Fatal(err)
	}
	got := e.waitApp("signed", "Ready with the key's signature", 60*time.Second, ready)
	if e.configMapValue("signed") != "1" || len(got.Status.History) == 0 || got.Status.History[0].Signer != "key "+artifactsign.KeyID(key.Public()) {
		t.Fatalf("ConfigMap %q, history %+v: want build 1 applied, signed by the key", e.configMapValue("signed"), got.Status.History)
	}

	publishSigned(t, login, repoURL+":build-2", "signed", "2", &artifactsign.SignOptions{Key: other})
	promote(t, login, repoURL+":build-2", "stable")
	e.refusedFor("signed", "not trusted", "signed", "1")

	publishSigned(t, login, repoURL+":build-3", "signed", "3", nil)
	promote(t, login, repoURL+":build-3", "stable")
	e.refusedFor("signed", "no signature", "signed", "1")
}

// TestArtifactSignedByThePipeline: with --trust-policy, the artifacts
// deployed into a namespace the policy names must be signed by one of its
// pipelines for it, whatever the Application says: protected main's
// keyless signature (a real Fulcio and timestamp authority) is applied and
// history names the pipeline; a feature branch's and a fork merge
// request's signed artifacts are refused, the last good state running.
func TestArtifactSignedByThePipeline(t *testing.T) {
	is, policy := sigstoretest.GitLabPolicy(t, appNS, "artifacts: {transparencyLog: Skip}\n")
	stack := sigstoretest.StartFor(t, policy)
	e := newEnv(t)
	e.trustPolicy, e.trustedRoot = policy, stack.TrustedRoot
	e.startController(time.Hour)
	reg, login := artifactRegistry(t, e)
	repoURL := "oci://" + reg.Host + "/myorg/myapp"
	signBy := func(job ciissuer.GitLabJob) *artifactsign.SignOptions {
		return &artifactsign.SignOptions{IDToken: sigstoretest.Token(t, is, job, oidc.SigstoreAudience), FulcioURL: stack.FulcioURL, TimestampURLs: []string{stack.TimestampURL}}
	}
	main := ciissuer.GitLabJob{ProjectPath: "myorg/myapp", ProjectID: 42, Ref: "main", RefProtected: true, PipelineID: 9}
	publishSigned(t, login, repoURL+":build-1", "pipelined", "1", signBy(main))
	promote(t, login, repoURL+":build-1", "stable")
	e.artifactApp("pipelined", repoURL, "stable")
	got := e.waitApp("pipelined", "Ready with the pipeline's signature", 60*time.Second, ready)
	if h := got.Status.History; e.configMapValue("pipelined") != "1" || len(h) == 0 || !strings.Contains(h[0].Signer, is.URL()+"/myorg/myapp refs/heads/main") || !strings.Contains(h[0].Signer, "/-/jobs/91") {
		t.Fatalf("ConfigMap %q, history %+v: want build 1 applied, signed by protected main's job 91", e.configMapValue("pipelined"), h)
	}

	feature := main
	feature.Ref = "feature/x"
	publishSigned(t, login, repoURL+":build-2", "pipelined", "2", signBy(feature))
	promote(t, login, repoURL+":build-2", "stable")
	e.refusedFor("pipelined", "refs/heads/feature/x", "pipelined", "1")

	fork := main
	fork.ProjectPath, fork.ProjectID, fork.RefProtected, fork.PipelineSource = "mallory/myapp", 666, false, "merge_request_event"
	publishSigned(t, login, repoURL+":build-3", "pipelined", "3", signBy(fork))
	promote(t, login, repoURL+":build-3", "stable")
	e.refusedFor("pipelined", "mallory/myapp", "pipelined", "1")
}

package controller_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
	"golang.org/x/crypto/ssh"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/gitserver"
	"github.com/keyless-cd/keyless/internal/gitsource"
)

func sshSigner(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func gpgEntity(t *testing.T) (*openpgp.Entity, string) {
	t.Helper()
	ent, err := openpgp.NewEntity("Release Manager", "", "release@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ent.Serialize(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return ent, buf.String()
}

func (e *env) pushSigned(files map[string]string, del []string, msg string, key *openpgp.Entity, signer git.Signer) string {
	e.t.Helper()
	when := time.Now()
	sha, err := e.git.Commit(e.t.Context(), repoName, gitserver.Commit{Files: files, Delete: del, Message: msg,
		Author: &object.Signature{Name: "Dana Developer", Email: "dana@example.com", When: when}, SignKey: key, Signer: signer})
	if err != nil {
		e.t.Fatal(err)
	}
	return sha
}

// TestVerifySelfHealOffPruneOff: signed commits only, drift reported but
// not reverted, removed files kept.
func TestVerifySelfHealOffPruneOff(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	trustedSSH := sshSigner(t)
	untrustedSSH := sshSigner(t)
	gpgKey, gpgArmored := gpgEntity(t)
	keys := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "trusted-signers", Namespace: appNS}, StringData: map[string]string{
		"ci.pub":      string(ssh.MarshalAuthorizedKey(trustedSSH.PublicKey())),
		"release.asc": gpgArmored,
	}}
	if err := e.admin.Create(ctx, keys); err != nil {
		t.Fatal(err)
	}
	e.startController(time.Hour)
	unsigned := e.push(manifests("registry.example.com/web:1.0", "hello"), nil, "unsigned")
	app := &kv1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: appNS},
		Spec: kv1.ApplicationSpec{
			Source: kv1.ApplicationSource{RepoURL: e.git.RepoURL(repoName), TargetRevision: "main", Path: "deploy",
				SecretRef: &kv1.LocalObjectReference{Name: "myapp-git"},
				Verify:    &kv1.VerifySource{Mode: "head", SecretRef: &kv1.LocalObjectReference{Name: "trusted-signers"}}},
			SyncPolicy: &kv1.SyncPolicy{Automated: &kv1.AutomatedSyncPolicy{Prune: false, SelfHeal: false}},
		},
	}
	if err := e.admin.Create(ctx, app); err != nil {
		t.Fatal(err)
	}

	t.Log("an unsigned commit is refused and nothing is applied")
	got := e.waitApp("web", "verification failure", 30*time.Second, func(a *kv1.Application) bool {
		return strings.Contains(condition(a, kv1.StalledCondition), "VerificationFailed")
	})
	if msg := condition(got, kv1.StalledCondition); !strings.Contains(msg, unsigned[:7]) || !strings.Contains(msg, "not signed") {
		t.Fatalf("condition: %s", msg)
	}
	if _, err := e.cs.AppsV1().Deployments(appNS).Get(ctx, "web", metav1.GetOptions{}); err == nil {
		t.Fatal("an unsigned commit was applied")
	}

	t.Log("a commit signed by an untrusted SSH key is refused, naming the key")
	untrusted := e.pushSigned(manifests("registry.example.com/web:1.0", "hello"), nil, "untrusted", nil, gitsource.SSHSigner{Signer: untrustedSSH})
	e.gitlabHook(hookSecret)
	e.waitApp("web", "untrusted key refused", 30*time.Second, func(a *kv1.Application) bool {
		msg := condition(a, kv1.StalledCondition)
		return strings.Contains(msg, untrusted[:7]) && strings.Contains(msg, ssh.FingerprintSHA256(untrustedSSH.PublicKey()))
	})

	t.Log("an SSH-signed commit by a trusted key is applied, the signer recorded")
	sshSigned := e.pushSigned(manifests("registry.example.com/web:1.0", "hello"), nil, "signed with ssh", nil, gitsource.SSHSigner{Signer: trustedSSH})
	e.gitlabHook(hookSecret)
	got = e.waitApp("web", "synced the SSH-signed commit", 30*time.Second, func(a *kv1.Application) bool {
		return ready(a) && a.Status.LastAppliedRevision == sshSigned
	})
	if got.Status.History[0].Signer != ssh.FingerprintSHA256(trustedSSH.PublicKey()) {
		t.Fatalf("signer = %q", got.Status.History[0].Signer)
	}
	if recs := e.audit.records(t); recs[len(recs)-1].Signer != got.Status.History[0].Signer {
		t.Fatalf("audit line lacks the signer: %+v", recs[len(recs)-1])
	}

	t.Log("with selfHeal off, drift is reported OutOfSync naming the object, not reverted")
	d, err := e.cs.AppsV1().Deployments(appNS).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	three := int32(3)
	d.Spec.Replicas = &three
	if _, err := e.cs.AppsV1().Deployments(appNS).Update(ctx, d, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	got = e.waitApp("web", "OutOfSync", 20*time.Second, func(a *kv1.Application) bool {
		return a.Status.Sync.Status == kv1.SyncStatusOutOfSync
	})
	if fmt.Sprint(got.Status.Sync.Drifted) != "[Deployment/web configured]" || !strings.Contains(condition(got, kv1.ReadyCondition), "selfHeal is off") {
		t.Fatalf("drift report: %v; %s", got.Status.Sync.Drifted, condition(got, kv1.ReadyCondition))
	}
	if d := got.Status.Sync.Diff; !strings.Contains(d, "-  replicas: 3") || !strings.Contains(d, "+  replicas: 1") {
		t.Fatalf("status.sync.diff does not show what a sync would change:\n%s", d)
	}
	time.Sleep(2 * time.Second)
	if d, _ := e.cs.AppsV1().Deployments(appNS).Get(ctx, "web", metav1.GetOptions{}); *d.Spec.Replicas != 3 {
		t.Fatal("drift was reverted although selfHeal is off")
	}

	t.Log("a GPG-signed commit removing a file is applied; with prune off the object stays")
	gpgSigned := e.pushSigned(nil, []string{"deploy/svc.yaml"}, "signed with gpg", gpgKey, nil)
	e.gitlabHook(hookSecret)
	got = e.waitApp("web", "synced the GPG-signed commit", 30*time.Second, func(a *kv1.Application) bool {
		return ready(a) && a.Status.LastAppliedRevision == gpgSigned
	})
	if want := fmt.Sprintf("%X", gpgKey.PrimaryKey.Fingerprint); got.Status.History[0].Signer != want {
		t.Fatalf("signer = %q, want %q", got.Status.History[0].Signer, want)
	}
	if _, err := e.cs.CoreV1().Services(appNS).Get(ctx, "web", metav1.GetOptions{}); err != nil {
		t.Fatalf("prune off, but the Service was deleted: %v", err)
	}
	if apimeta.IsStatusConditionTrue(got.Status.Conditions, kv1.StalledCondition) {
		t.Fatal("still stalled")
	}

	t.Log("an Application annotated to orphan leaves its objects behind when deleted")
	orphan := e.app("web")
	patch := client.MergeFrom(orphan.DeepCopy())
	orphan.Annotations = map[string]string{kv1.DeletionPolicyAnnotation: kv1.DeletionPolicyOrphan}
	if err := e.admin.Patch(ctx, orphan, patch); err != nil {
		t.Fatal(err)
	}
	if err := e.admin.Delete(ctx, e.app("web")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the Application gone", func() (bool, string) {
		err := e.admin.Get(ctx, client.ObjectKey{Namespace: appNS, Name: "web"}, &kv1.Application{})
		return apierrors.IsNotFound(err), errString(err)
	})
	if _, err := e.cs.AppsV1().Deployments(appNS).Get(ctx, "web", metav1.GetOptions{}); err != nil {
		t.Fatalf("orphaned Deployment was deleted: %v", err)
	}
}

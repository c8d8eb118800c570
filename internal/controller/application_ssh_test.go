package controller_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/gitserver"
	"github.com/keyless-cd/keyless/internal/gitsource"
)

// TestSSHDeployKeyUnderTheDeploymentsConstraints: an Application reading its
// repository over SSH with a deploy key from its Secret (the user is the
// URL's) syncs, and syncs the next commit, with the controller on a read-only
// root filesystem; a rotated host key the Secret does not know stops the
// sync, naming the host key's fingerprint, and what runs is kept.
func TestSSHDeployKeyUnderTheDeploymentsConstraints(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	key, deploy, err := gitserver.NewDeployKey()
	if err != nil {
		t.Fatal(err)
	}
	sshd, err := gitserver.StartSSH(ctx, gitserver.SSHOptions{Root: e.git.Root(), AuthorizedKeys: []ssh.PublicKey{deploy.PublicKey()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sshd.Stop)
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "myapp-ssh", Namespace: appNS,
			Labels: map[string]string{kv1.CredentialLabel: kv1.CredentialGit}, Annotations: map[string]string{kv1.GitHostAnnotation: "127.0.0.1"}},
		Data: map[string][]byte{gitsource.KeyIdentity: key, gitsource.KeyKnownHosts: sshd.KnownHosts()},
	}
	if err := e.admin.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	first := e.push(manifests("registry.example.com/web:1.0", "hello"), nil, "initial deploy")
	e.startControllerProcess()
	e.tenantApp(appNS, "web", sshd.RepoURL(repoName), "main", "deploy", "myapp-ssh")
	e.waitApp("web", "Ready over ssh", 60*time.Second, func(a *kv1.Application) bool {
		return ready(a) && a.Status.LastAppliedRevision == first
	})
	if e.image() != "registry.example.com/web:1.0" {
		t.Fatalf("image %s", e.image())
	}

	t.Log("the next commit is fetched over ssh too")
	next := e.push(manifests("registry.example.com/web:1.1", "hello"), nil, "web 1.1")
	e.waitImage("registry.example.com/web:1.1", 30*time.Second)
	e.waitApp("web", "synced at the next commit", 20*time.Second, func(a *kv1.Application) bool {
		return ready(a) && a.Status.LastAppliedRevision == next
	})

	t.Log("a host key the Secret does not know is refused, naming its fingerprint")
	_, other, err := gitserver.NewDeployKey()
	if err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(secret.DeepCopy())
	secret.Data[gitsource.KeyKnownHosts] = []byte(knownhosts.Line([]string{knownhosts.Normalize(sshd.Addr())}, other.PublicKey()) + "\n")
	if err := e.admin.Patch(ctx, secret, patch); err != nil {
		t.Fatal(err)
	}
	requestSync(t, e, "rotated")
	fp := ssh.FingerprintSHA256(sshd.HostKey())
	refused := func(a *kv1.Application) bool {
		msg := condition(a, kv1.ReadyCondition)
		return strings.Contains(msg, "GitOperationFailed") && strings.Contains(msg, fp) && strings.Contains(msg, "changed")
	}
	e.waitApp("web", "host key refused", 30*time.Second, refused)
	e.push(manifests("registry.example.com/web:1.2", "hello"), nil, "web 1.2")
	requestSync(t, e, "rotated, and a new commit")
	time.Sleep(3 * time.Second)
	if img := e.image(); img != "registry.example.com/web:1.1" || !refused(e.app("web")) {
		t.Fatalf("a refused host changed what runs: %s; %s", img, condition(e.app("web"), kv1.ReadyCondition))
	}
	if entries, _ := os.ReadDir(e.cacheDir); len(entries) == 0 {
		t.Fatalf("nothing in the writable --cache-dir %s: was the read-only root in force?", e.cacheDir)
	}
}

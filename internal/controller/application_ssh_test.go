package controller_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/gitserver"
	"github.com/keyless-cd/keyless/internal/gitsource"
)

// readOnlyRoot is the shipped Deployment's filesystem, made with a private
// mount namespace: / read-only, only the cache folder ($1) writable.
const readOnlyRoot = `set -e
mount --make-rprivate /
mount --bind "$1" "$1"
mount -o remount,bind,ro /
shift
exec "$@"`

// startControllerProcess runs `keyless controller` as its ServiceAccount in a
// process of its own, on a read-only root filesystem with only --cache-dir
// writable, as config/install/controller/deployment.yaml runs it, with
// extraArgs. It returns the path of the process's log (audit lines included).
func (e *env) startControllerProcess(extraArgs ...string) string {
	e.t.Helper()
	dir := e.t.TempDir()
	kubeconfig := filepath.Join(dir, "controller.kubeconfig")
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["test"] = &clientcmdapi.Cluster{Server: e.ctrlCfg.Host, CertificateAuthorityData: e.ctrlCfg.CAData}
	cfg.AuthInfos["controller"] = &clientcmdapi.AuthInfo{Token: e.ctrlCfg.BearerToken}
	cfg.Contexts["controller"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "controller"}
	cfg.CurrentContext = "controller"
	if err := clientcmd.WriteToFile(*cfg, kubeconfig); err != nil {
		e.t.Fatal(err)
	}
	e.cacheDir = e.t.TempDir()
	self, err := os.Executable()
	if err != nil {
		e.t.Fatal(err)
	}
	log := filepath.Join(dir, "controller.log")
	out, err := os.Create(log)
	if err != nil {
		e.t.Fatal(err)
	}
	cmd := exec.Command("unshare", "--mount", "sh", "-c", readOnlyRoot, "sh", e.cacheDir, //nolint:gosec // the test binary, run as keyless
		self, "controller", "--kubeconfig", kubeconfig, "--namespaces", strings.Join(e.namespaces, ","),
		"--cache-dir", e.cacheDir, "--metrics-bind-address", "0", "--health-probe-bind-address", "0", "--default-interval", "1h")
	cmd.Args = append(cmd.Args, extraArgs...)
	cmd.Env = append(os.Environ(), runCLIEnv+"=1", "TMPDIR=/tmp", "HOME=/nonexistent")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("starting the controller under unshare (needs root or user namespaces): %v", err)
	}
	e.t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		_ = out.Close()
		if e.t.Failed() {
			b, _ := os.ReadFile(log)
			e.t.Logf("controller log:\n%s", b)
		}
	})
	return log
}

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

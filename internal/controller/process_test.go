package controller_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
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
// extraArgs.
func (e *env) startControllerProcess(extraArgs ...string) *controllerProcess {
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
	p := &controllerProcess{cmd: cmd, log: log, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); _ = out.Close(); close(p.done) }()
	e.t.Cleanup(func() {
		p.stop(syscall.SIGTERM)
		if e.t.Failed() {
			b, _ := os.ReadFile(log)
			e.t.Logf("controller log (%s):\n%s", strings.Join(extraArgs, " "), b)
		}
	})
	return p
}

// controllerProcess is a `keyless controller` process (unshare execs sh,
// which execs the controller: one PID).
type controllerProcess struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// stop sends sig and waits for the exit (SIGKILL after 20s).
func (p *controllerProcess) stop(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// logs returns what the process logged so far.
func (p *controllerProcess) logs(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(p.log)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

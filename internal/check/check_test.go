package check_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/cli"
	"github.com/keyless-cd/keyless/internal/install"
	"github.com/keyless-cd/keyless/internal/localcluster"
	"github.com/keyless-cd/keyless/internal/localcluster/clustertest"
	"github.com/keyless-cd/keyless/internal/renderproc"
)

// TestMain lets this test binary serve as the controller's render child.
func TestMain(m *testing.M) {
	renderproc.ServeIfWorker()
	os.Exit(m.Run())
}

func run(ctx context.Context, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := cli.Run(ctx, args, cli.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	return code, out.String(), errOut.String()
}

// TestCheck: keyless check --pre passes for the cluster admin and names
// the missing rights for someone without them; keyless check fails before
// an install (no CRD), then, with the install and a controller leading,
// passes every check; a managed namespace whose deployer Role is gone is
// named, and keyless version shows the cluster's versions.
func TestCheck(t *testing.T) {
	ctx := t.Context()
	c := clustertest.Start(t, localcluster.Options{})
	cs := kubernetes.NewForConfigOrDie(c.Config)
	kc := "--kubeconfig=" + c.KubeconfigPath

	code, out, errOut := run(ctx, "check", "--pre", kc)
	if code != 0 || !strings.Contains(out, "✔ Kubernetes version: v1.") || !strings.Contains(out, "✔ permissions to install") || !strings.Contains(out, "✔ Pod Security: namespace keyless-system does not exist yet") {
		t.Fatalf("check --pre as the admin: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = run(ctx, "check", "--pre", kc, "--as", "jane@example.com")
	if code != 1 || !strings.Contains(out, "✗ permissions to install: you may not create customresourcedefinitions.apiextensions.k8s.io, create namespaces") || !strings.Contains(errOut, "some checks failed") {
		t.Fatalf("check --pre without rights: exit %d\n%s%s", code, out, errOut)
	}

	code, out, errOut = run(ctx, "check", kc)
	if code != 1 || !strings.Contains(out, "✗ CRD: "+"applications.keyless.dev is not installed") || !strings.Contains(out, "✗ controller: no deployment keyless-controller") {
		t.Fatalf("check before an install: exit %d\n%s%s", code, out, errOut)
	}

	image := "registry.example.com/keyless:v0.0.1-test"
	if code, out, errOut := run(ctx, "install", "--namespaces", "team-a", "--image", image, kc, "--timeout", "2m"); code != 0 {
		t.Fatalf("install: exit %d\n%s%s", code, out, errOut)
	}
	// kwok runs the Deployment's pods but no process in them: no leader yet.
	code, out, errOut = run(ctx, "check", kc)
	if code != 1 || !strings.Contains(out, "✗ leader: no leader Lease keyless-controller in keyless-system") {
		t.Fatalf("check with no replica leading: exit %d\n%s%s", code, out, errOut)
	}

	t.Log("a controller that leads: every check passes")
	ctrlCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		run(ctrlCtx, "controller", kc, "--namespaces", "team-a", "--leader-elect", "--leader-election-namespace", install.DefaultControllerNamespace,
			"--metrics-bind-address", "0", "--health-probe-bind-address", "0", "--cache-dir", t.TempDir())
	}()
	t.Cleanup(func() { stop(); <-done })
	deadline := time.Now().Add(90 * time.Second)
	for {
		code, out, errOut = run(ctx, "check", kc)
		if code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("check never passed: exit %d\n%s%s", code, out, errOut)
		}
		time.Sleep(time.Second)
	}
	t.Logf("keyless check:\n%s", out)
	for _, want := range []string{"✔ CRD: applications.keyless.dev established, serving v1alpha1", "✔ controller: deployment keyless-system/keyless-controller", "2/2 replicas available",
		"✔ leader: ", "leads (Lease keyless-system/keyless-controller", "✔ webhook: service keyless-system/keyless-controller", "✔ namespace team-a: "} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}

	t.Log("keyless version shows the cluster's versions")
	d, err := cs.AppsV1().Deployments(install.DefaultControllerNamespace).Get(ctx, install.DeploymentName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantController := d.Labels["app.kubernetes.io/version"]
	if wantController == "" {
		wantController = "v0.0.1-test" // the image's tag
	}
	code, out, errOut = run(ctx, "version", kc)
	if code != 0 || !strings.Contains(out, "controller "+wantController+"\n") {
		t.Fatalf("keyless version: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = run(ctx, "version", "--client", kc)
	if code != 0 || strings.Contains(out, "controller ") {
		t.Fatalf("keyless version --client: exit %d\n%s", code, out)
	}

	t.Log("a managed namespace that lost its deployer Role is named")
	if err := cs.RbacV1().Roles("team-a").Delete(ctx, kv1.DefaultServiceAccountName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = run(ctx, "check", kc)
	if code != 1 || !strings.Contains(out, "✗ namespace team-a: missing Role/keyless-deployer: run `keyless install namespace team-a`") {
		t.Fatalf("check without the deployer Role: exit %d\n%s%s", code, out, errOut)
	}
}

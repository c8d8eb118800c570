package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/keyless-cd/keyless/internal/ciissuer"
	"github.com/keyless-cd/keyless/internal/engine"
	"github.com/keyless-cd/keyless/internal/localcluster"
	"github.com/keyless-cd/keyless/internal/localcluster/clustertest"
	"github.com/keyless-cd/keyless/internal/render"
	"github.com/keyless-cd/keyless/internal/version"
)

// TestOIDCConfigRBACAndDeploy follows the README's "Deploy from CI with OIDC":
// policy → oidc config → apiserver → oidc rbac → deploy with the job's token.
func TestOIDCConfigRBACAndDeploy(t *testing.T) {
	ctx := t.Context()
	is, err := ciissuer.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer is.Stop()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"ca.pem": string(is.CAPEM()),
		// The seed's migration case: a PreSync hook Job before the app's config.
		"deploy/migrations/job.yaml": "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\n  annotations:\n    argocd.argoproj.io/hook: PreSync\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: m\n        image: registry.example.com/migrate:1\n",
		"deploy/migrations/cm.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-config\ndata:\n  schema: \"42\"\n",
		"keyless-oidc.yaml": fmt.Sprintf(`apiVersion: keyless.dev/v1alpha1
kind: FederationPolicy
issuers:
- name: gitlab
  provider: gitlab
  url: %s
  audience: k8s-prod
  certificateAuthorityFile: %s
pipelines:
- issuer: gitlab
  project: myorg/myapp
  projectID: "4242"
  refs: [main]
  namespace: myapp
  manifests: deploy/migrations
`, is.URL(), filepath.Join(dir, "ca.pem")),
	})
	policy := filepath.Join(dir, "keyless-oidc.yaml")
	code, authn, errOut := run(ctx, t, "oidc", "config", "--policy", policy)
	if code != 0 || !strings.Contains(authn, "kind: AuthenticationConfiguration") {
		t.Fatalf("oidc config: exit %d %s", code, errOut)
	}
	writeFiles(t, dir, map[string]string{"authn.yaml": authn})
	c := clustertest.Start(t, localcluster.Options{APIServerArgs: []string{"--authentication-config=" + filepath.Join(dir, "authn.yaml")}})
	admin := kubernetes.NewForConfigOrDie(c.Config)
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "myapp"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	code, rbac, errOut := run(ctx, t, "oidc", "rbac", "--policy", policy)
	if code != 0 || strings.Contains(rbac, "ClusterRole") || !strings.Contains(rbac, "resources:\n  - jobs") {
		t.Fatalf("oidc rbac: exit %d\n%s%s", code, rbac, errOut)
	}
	writeFiles(t, dir, map[string]string{"rbac/rbac.yaml": rbac})
	objs, err := render.Render(ctx, render.Options{Root: dir, Path: "rbac"})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	// The admin applies the pipeline's Role with their own identity.
	if _, err := eng.Apply(ctx, objs.Objects, engine.ApplyOptions{Namespace: "myapp", Name: "ci-rbac", TrustRBAC: true}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cluster-ca.pem"), c.Config.CAData, 0o600); err != nil {
		t.Fatal(err)
	}

	token, _ := is.Sign(ciissuer.GitLabClaims(ciissuer.GitLabJob{ProjectPath: "myorg/myapp", ProjectID: 4242, Ref: "main", RefProtected: true, Audience: "k8s-prod"}))
	t.Setenv("K8S_TOKEN", token)
	args := []string{"deploy", filepath.Join(dir, "deploy/migrations"), "-n", "myapp", "--server", c.Config.Host,
		"--certificate-authority", filepath.Join(dir, "cluster-ca.pem"), "--token-env", "K8S_TOKEN", "--wait", "1m"}
	deadline := time.Now().Add(60 * time.Second)
	var out string
	for {
		code, out, errOut = run(ctx, t, args...)
		if code == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if code != 0 || !strings.Contains(errOut, "authenticated as gitlab:project_path:myorg/myapp:ref_type:branch:ref:main") || !strings.Contains(out, "PreSync hook Job/migrate [wave 0] Succeeded") || !strings.Contains(out, "ConfigMap/app-config created") {
		t.Fatalf("deploy: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}

	feature, _ := is.Sign(ciissuer.GitLabClaims(ciissuer.GitLabJob{ProjectPath: "myorg/myapp", ProjectID: 4242, Ref: "feature/x", RefProtected: false, Audience: "k8s-prod"}))
	t.Setenv("K8S_TOKEN", feature)
	code, _, errOut = run(ctx, t, args...)
	if code == 0 || !strings.Contains(errOut, "did not accept the token (401)") {
		t.Fatalf("feature-branch deploy: exit %d, stderr %q", code, errOut)
	}
	// keyless kubeconfig: an exec-plugin kubeconfig with no secret inside works.
	bin := filepath.Join(dir, "keyless")
	if out, err := exec.Command("go", "build", "-tags", version.BuildTags, "-o", bin, "../../cmd/keyless").CombinedOutput(); err != nil {
		t.Fatalf("building keyless: %v\n%s", err, out)
	}
	t.Setenv("K8S_TOKEN", token)
	kubeconfig := filepath.Join(dir, "ci.kubeconfig")
	code, _, errOut = run(ctx, t, "kubeconfig", "--server", c.Config.Host, "--certificate-authority", filepath.Join(dir, "cluster-ca.pem"),
		"--namespace", "myapp", "--provider", "gitlab", "--command", bin, "-o", kubeconfig)
	if code != 0 {
		t.Fatalf("kubeconfig: exit %d %s", code, errOut)
	}
	if b, _ := os.ReadFile(kubeconfig); strings.Contains(string(b), token) {
		t.Fatal("the kubeconfig contains the token")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	review, err := kubernetes.NewForConfigOrDie(cfg).AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil || review.Status.UserInfo.Username != "gitlab:project_path:myorg/myapp:ref_type:branch:ref:main" {
		t.Fatalf("whoami through the exec-plugin kubeconfig: %v %v", review, err)
	}

	// deploy --provider gitlab reads the id_tokens variable itself.
	code, out, errOut = run(ctx, t, "deploy", filepath.Join(dir, "deploy/migrations"), "-n", "myapp", "--server", c.Config.Host,
		"--certificate-authority", filepath.Join(dir, "cluster-ca.pem"), "--provider", "gitlab", "--from-env", "K8S_TOKEN")
	if code != 0 || !strings.Contains(out, "ConfigMap/app-config unchanged") || !strings.Contains(out, "PreSync hook Job/migrate [wave 0] Succeeded") {
		t.Fatalf("deploy --provider gitlab: exit %d\n%s%s", code, out, errOut)
	}

	// keyless oidc check agrees, offline.
	writeFiles(t, dir, map[string]string{"jwks.json": string(is.JWKS()), "feature.jwt": feature, "good.jwt": token})
	code, out, _ = run(ctx, t, "oidc", "check", "--config", filepath.Join(dir, "authn.yaml"), "--token-file", filepath.Join(dir, "good.jwt"), "--jwks", filepath.Join(dir, "jwks.json"))
	if code != 0 || !strings.Contains(out, `allowed: username "gitlab:project_path:myorg/myapp:ref_type:branch:ref:main"`) {
		t.Fatalf("oidc check of the good token: exit %d %q", code, out)
	}
	code, _, errOut = run(ctx, t, "oidc", "check", "--config", filepath.Join(dir, "authn.yaml"), "--token-file", filepath.Join(dir, "feature.jwt"), "--jwks", filepath.Join(dir, "jwks.json"))
	if code != 1 || !strings.Contains(errOut, "not from a pipeline trusted") {
		t.Fatalf("oidc check of the feature-branch token: exit %d %q", code, errOut)
	}
	t.Setenv("K8S_TOKEN", "")
	code, _, errOut = run(ctx, t, args...)
	if code == 0 || !strings.Contains(errOut, "K8S_TOKEN") {
		t.Fatalf("missing token: exit %d, stderr %q", code, errOut)
	}
}

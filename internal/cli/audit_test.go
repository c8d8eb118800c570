package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/keyless-cd/keyless/internal/install"
	"github.com/keyless-cd/keyless/internal/localcluster"
	"github.com/keyless-cd/keyless/internal/localcluster/clustertest"
)

func TestAuditRepoCommand(t *testing.T) {
	code, out, errOut := run(t.Context(), t, "audit", "repo", "../audit/testdata/repo")
	if code != 1 {
		t.Fatalf("exit %d (want 1: findings at or above high)\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"critical  KL001  stored/kubeconfig.yaml:9", "KL010", "fix: replace with id_tokens + `keyless deploy`"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = run(t.Context(), t, "audit", "repo", "../audit/testdata/repo", "--format", "json")
	var report struct {
		Findings []map[string]any `json:"findings"`
	}
	if code != 1 || json.Unmarshal([]byte(out), &report) != nil || len(report.Findings) != 22 || // the fixture repository's findings, KL040 (opaque.yaml) included
		report.Findings[0]["severity"] != "critical" {
		t.Fatalf("json: exit %d, %d findings: %s", code, len(report.Findings), out[:min(200, len(out))])
	}
	code, out, _ = run(t.Context(), t, "audit", "repo", "../audit/testdata/repo", "--format", "sarif")
	var log struct {
		Version string `json:"version"`
		Runs    []struct {
			Results []any `json:"results"`
		} `json:"runs"`
	}
	if code != 1 || json.Unmarshal([]byte(out), &log) != nil || log.Version != "2.1.0" || len(log.Runs) != 1 || len(log.Runs[0].Results) != len(report.Findings) {
		t.Fatalf("sarif: exit %d: %s", code, out[:min(300, len(out))])
	}
	code, out, _ = run(t.Context(), t, "audit", "repo", "../audit/testdata/repo", "--format", "codequality")
	var issues []struct {
		CheckName string `json:"check_name"`
		Location  struct {
			Path string `json:"path"`
		} `json:"location"`
	}
	if code != 1 || json.Unmarshal([]byte(out), &issues) != nil || len(issues) != len(report.Findings) || issues[0].CheckName != "keyless/"+report.Findings[0]["rule"].(string) {
		t.Fatalf("codequality: exit %d: %s", code, out[:min(300, len(out))])
	}
	// keyless's own repository is clean, its audit fixtures accepted with a
	// reason (.keyless-audit-ignore.yaml at the root).
	if code, out, errOut := run(t.Context(), t, "audit", "repo", "../.."); code != 0 || !strings.Contains(out, "no findings") || !strings.Contains(errOut, "accepted risk: KL001 internal/audit/testdata/") {
		t.Errorf("keyless's repository: exit %d\n%s%s", code, out, errOut)
	}
	// The keyless examples and install are clean.
	for _, dir := range []string{"../../examples", "../../config"} {
		code, out, errOut := run(t.Context(), t, "audit", "repo", dir)
		if code != 0 || !strings.Contains(out, "no findings") {
			t.Errorf("%s: exit %d\n%s%s", dir, code, out, errOut)
		}
	}
	// Accepting every high and critical risk (each with a reason) passes, and says so.
	code, _, errOut = run(t.Context(), t, "audit", "repo", "../audit/testdata/repo",
		"--ignore", "KL001=test fixture", "--ignore", "KL002=test fixture", "--ignore", "KL010=test fixture", "--ignore", "KL020=test fixture",
		"--ignore", "KL021=test fixture", "--ignore", "KL022:rbac/*=test fixture", "--ignore", "KL030=test fixture", "--ignore", "KL031=test fixture", "--ignore", "KL040=test fixture")
	if code != 0 || strings.Count(errOut, "accepted risk:") != 22 {
		t.Fatalf("all accepted: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := run(t.Context(), t, "audit", "repo", "../audit/testdata/repo", "--ignore", "KL010"); code != 2 || !strings.Contains(errOut, "reason") {
		t.Fatalf("ignore without a reason: exit %d %q", code, errOut)
	}
	if code, _, errOut := run(t.Context(), t, "audit", "repo", ".", "--fail-on", "severe"); code != 2 || !strings.Contains(errOut, "--fail-on") {
		t.Errorf("bad --fail-on: exit %d %q", code, errOut)
	}
}

// TestAuditClusterCommand: a fresh cluster has no findings (Kubernetes' own
// bindings are not CI/CD risks); a cluster-admin binding for a CI account is.
func TestAuditClusterCommand(t *testing.T) {
	c := clustertest.Start(t, localcluster.Options{})
	code, out, errOut := run(t.Context(), t, "audit", "cluster", "-A", "--kubeconfig", c.KubeconfigPath)
	if code != 0 || !strings.Contains(out, "no findings") || strings.Contains(out, "keyless install") {
		t.Fatalf("fresh cluster: exit %d\n%s%s", code, out, errOut)
	}
	// keyless's namespaced install is clean, and its blast radius is shown.
	if err := install.Apply(t.Context(), c.Config, install.Options{Namespaces: []string{"myapp"}}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = run(t.Context(), t, "audit", "cluster", "-A", "--kubeconfig", c.KubeconfigPath)
	for _, want := range []string{"no findings", "keyless install", "system:serviceaccount:myapp:keyless-deployer", "cluster-wide: none"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("keyless installed: exit %d, no %q\n%s%s", code, want, out, errOut)
		}
	}
	cs := kubernetes.NewForConfigOrDie(c.Config)
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(t.Context(), &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "gitlab-ci-deployer"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: rbacv1.GroupName, Name: "project_path:myorg/myapp:ref_type:branch:ref:main"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	code, out, _ = run(t.Context(), t, "audit", "cluster", "-A", "--kubeconfig", c.KubeconfigPath)
	if code != 1 || !strings.Contains(out, "KL102") || !strings.Contains(out, "clusterrolebinding/gitlab-ci-deployer") {
		t.Fatalf("the seed's ClusterRoleBinding: exit %d\n%s", code, out)
	}
}

// TestAuditRepoSaysWhatItSkipped: "no findings" in a repository holding a
// text file too large to scan comes with a warning naming it (and the JSON
// lists it), so nobody reads the result as "that file is clean".
func TestAuditRepoSaysWhatItSkipped(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dump.yaml"), []byte(strings.Repeat("key: value\n", 200_000)), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t.Context(), t, "audit", "repo", dir)
	if code != 0 || !strings.Contains(out, "no findings") || !strings.Contains(errOut, "warning: not scanned, larger than 1 MiB: dump.yaml (2.1 MiB)") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = run(t.Context(), t, "audit", "repo", dir, "--format", "json")
	var rep struct {
		Skipped []string `json:"skipped"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || len(rep.Skipped) != 1 || !strings.HasPrefix(rep.Skipped[0], "dump.yaml") {
		t.Fatalf("json: exit %d\n%s", code, out)
	}
}

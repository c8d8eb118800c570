package audit

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
)

const storedKubeconfig = `apiVersion: v1
kind: Config
clusters: [{name: prod, cluster: {server: "https://k8s:6443"}}]
users:
- name: ci
  user:
    token: eyJhbGciOiJSUzI1NiJ9.c2VjcmV0.c2ln
`

// TestScanHistoryFindsRemovedCredential: a kubeconfig committed and later
// deleted is not in the working tree but is still in Git; --history finds it
// with its commit. A file still present unchanged is reported once, by the
// working-tree scan, not again by history.
func TestScanHistoryFindsRemovedCredential(t *testing.T) {
	dir := t.TempDir()
	wt, commit := gitRepo(t, dir)
	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("deploy/kubeconfig.yaml", storedKubeconfig)
	write("rbac/admin.yaml", "kind: ClusterRoleBinding\nmetadata: {name: ci}\nroleRef: {name: cluster-admin}\nsubjects:\n- {kind: ServiceAccount, name: ci}\n")
	leaked := commit("add deploy config")
	if _, err := wt.Remove("deploy/kubeconfig.yaml"); err != nil {
		t.Fatal(err)
	}
	commit("remove the kubeconfig")

	now, err := ScanRepo(dir, ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(now) != 1 || now[0].Rule != "KL021" {
		t.Fatalf("working tree: %+v", now)
	}
	hist, err := ScanHistory(dir, ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 1 || hist[0].Rule != "KL001" || hist[0].File != "deploy/kubeconfig.yaml" || hist[0].Line != 7 || hist[0].Commit != leaked {
		t.Fatalf("history: %+v (want KL001 deploy/kubeconfig.yaml:7 in %s)", hist, leaked)
	}
}

func TestScanHistoryNeedsARepository(t *testing.T) {
	if _, err := ScanHistory(t.TempDir(), ScanOptions{}); err == nil {
		t.Fatal("no error for a directory that is not a Git repository")
	}
}

// gitRepo makes dir a Git repository and returns its worktree and a function
// committing everything in it (returning the short commit id).
func gitRepo(t *testing.T, dir string) (*git.Worktree, func(msg string) string) {
	t.Helper()
	repo, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	return wt, func(msg string) string {
		t.Helper()
		if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
			t.Fatal(err)
		}
		h, err := wt.Commit(msg, &git.CommitOptions{Author: &object.Signature{Name: "dev", Email: "dev@example.com", When: time.Now()}})
		if err != nil {
			t.Fatal(err)
		}
		return h.String()[:7]
	}
}

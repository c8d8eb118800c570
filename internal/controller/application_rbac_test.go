package controller_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

// TestDeployerRoleDerivedFromManifests: with the namespace installed by
// `keyless install namespace --manifests` (a deployer Role listing only the
// manifests' kinds), the Application syncs, is watched and prunes; a commit
// adding a kind the Role lacks fails naming it, and what runs is kept.
func TestDeployerRoleDerivedFromManifests(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	files := manifests("registry.example.com/web:1.0", "hello")
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errOut := e.keyless("", "install", "namespace", appNS, "--manifests", filepath.Join(dir, "deploy"), "--root", dir)
	if code != 0 {
		t.Fatalf("install namespace: exit %d\n%s%s", code, out, errOut)
	}
	role, err := e.cs.RbacV1().Roles(appNS).Get(ctx, "keyless-deployer", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var granted []string
	for _, r := range role.Rules {
		for _, res := range r.Resources {
			granted = append(granted, strings.Join(r.APIGroups, ",")+"/"+res)
		}
	}
	if strings.Join(granted, " ") != "/configmaps /services apps/deployments" {
		t.Fatalf("deployer Role grants %v, want exactly the manifests' kinds", granted)
	}

	first := e.push(files, nil, "initial deploy")
	e.startController(time.Hour)
	e.createApp("web", "deploy", time.Hour)
	e.waitApp("web", "Ready with the derived Role", 60*time.Second, func(a *kv1.Application) bool {
		return ready(a) && a.Status.LastAppliedRevision == first
	})
	t.Log("drift is watched with the derived watch rights")
	e.editUntilReverted("web")

	t.Log("prune works with the derived Role")
	e.push(nil, []string{"deploy/svc.yaml"}, "remove the service")
	e.gitlabHook(hookSecret)
	waitFor(t, 20*time.Second, "Service pruned", func() (bool, string) {
		_, err := e.cs.CoreV1().Services(appNS).Get(ctx, "web", metav1.GetOptions{})
		return apierrors.IsNotFound(err), errString(err)
	})

	t.Log("a kind the Role lacks fails, naming it")
	e.push(map[string]string{"deploy/sa.yaml": "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: extra\n"}, nil, "a new kind")
	e.gitlabHook(hookSecret)
	e.waitApp("web", "forbidden kind reported", 30*time.Second, func(a *kv1.Application) bool {
		msg := condition(a, kv1.ReadyCondition) + condition(a, kv1.StalledCondition)
		return strings.Contains(msg, "serviceaccounts") || strings.Contains(msg, "ServiceAccount/extra")
	})
	if img := e.image(); img != "registry.example.com/web:1.0" {
		t.Fatalf("image %s", img)
	}
}

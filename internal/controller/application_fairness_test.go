package controller_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/gitserver"
)

// slowApp is a path of the test repository whose sync never ends by itself:
// a ConfigMap in wave 0, then a Deployment no node can run in each of waves
// 1 to 3.
func slowApp(name string) map[string]string {
	files := map[string]string{
		name + "/first.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "-first\n  annotations:\n    argocd.argoproj.io/sync-wave: \"0\"\ndata:\n  a: b\n",
	}
	for wave := 1; wave <= 3; wave++ {
		d := fmt.Sprintf("%s-stuck-%d", name, wave)
		files[fmt.Sprintf("%s/stuck-%d.yaml", name, wave)] = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ` + d + `
  annotations:
    argocd.argoproj.io/sync-wave: "` + fmt.Sprint(wave) + `"
spec:
  replicas: 1
  selector:
    matchLabels: {app: ` + d + `}
  template:
    metadata:
      labels: {app: ` + d + `}
    spec:
      nodeSelector: {disktype: does-not-exist}
      securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
      containers:
      - name: app
        securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
        image: registry.example.com/app:1
`
	}
	return files
}

// TestBusyNamespaceDoesNotHoldEveryWorker is the case: one team's
// Applications have waves that never become healthy, more of them than the
// controller has workers. Another team's one-ConfigMap Application, created
// while they hold every worker, takes the first worker that comes free —
// ahead of the busy team's Applications queued before it — and each slow
// sync ends at --sync-timeout with the flag in its message, keeping the
// waves it applied in its inventory.
func TestBusyNamespaceDoesNotHoldEveryWorker(t *testing.T) {
	e := newEnv(t, teamB)
	ctx := t.Context()
	const syncTimeout = 8 * time.Second
	e.concurrency = 2 // --max-concurrent-per-namespace: 1
	e.hookTimeout, e.syncTimeout = syncTimeout, syncTimeout
	e.startController(time.Hour)

	slow := []string{"slow-1", "slow-2", "slow-3", "slow-4"}
	files := map[string]string{}
	for _, name := range slow {
		for k, v := range slowApp(name) {
			files[k] = v
		}
	}
	e.push(files, nil, "four Applications whose waves never become healthy")
	if err := e.git.CreateRepo(ctx, teamBRepo, "main"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.git.Commit(ctx, teamBRepo, gitserver.Commit{Files: map[string]string{
		"small/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: small\ndata:\n  a: b\n",
	}}); err != nil {
		t.Fatal(err)
	}
	if err := e.admin.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "b-git", Namespace: teamB, Labels: map[string]string{kv1.CredentialLabel: kv1.CredentialGit}, Annotations: map[string]string{kv1.GitHostAnnotation: "127.0.0.1"}},
		StringData: map[string]string{"username": "b", "password": gitToken}}); err != nil {
		t.Fatal(err)
	}

	started := func(name string) bool {
		_, err := e.cs.CoreV1().ConfigMaps(appNS).Get(ctx, name+"-first", metav1.GetOptions{})
		return err == nil
	}
	for _, name := range slow {
		e.tenantApp(appNS, name, e.git.RepoURL(repoName), "main", name, "myapp-git")
	}
	// Both workers are in slow syncs of the busy team; two more of its
	// Applications wait for one.
	waitFor(t, 60*time.Second, "two slow syncs under way", func() (bool, string) {
		n := 0
		for _, name := range slow {
			if started(name) {
				n++
			}
		}
		return n == 2, fmt.Sprintf("%d started", n)
	})

	created := time.Now()
	e.tenantApp(teamB, "small", e.git.RepoURL(teamBRepo), "main", "small", "b-git")
	e.waitTenant(teamB, "small", "synced", 3*syncTimeout+30*time.Second, func(a *kv1.Application) bool {
		return apimeta.IsStatusConditionTrue(a.Status.Conditions, kv1.ReadyCondition) && a.Status.LastAppliedRevision != ""
	})
	t.Logf("team B's Application was Ready %s after it was created (--sync-timeout %s, 2 workers)", time.Since(created).Round(100*time.Millisecond), syncTimeout)
	var waited []string
	for _, name := range slow {
		if !started(name) {
			waited = append(waited, name)
		}
	}
	if len(waited) == 0 {
		t.Fatal("every slow Application of the busy team started its sync before team B's one-ConfigMap Application was Ready: it waited behind all of them")
	}

	// A slow sync ends at --sync-timeout, not after its three waves' timeouts.
	app := e.waitTenant(appNS, "slow-1", "stopped by --sync-timeout", 3*syncTimeout+30*time.Second, readyFalseSays("sync exceeded --sync-timeout (8s)"))
	if apimeta.IsStatusConditionTrue(app.Status.Conditions, kv1.StalledCondition) {
		t.Errorf("a sync stopped by its deadline is Stalled (%s); it must be retried", condition(app, kv1.StalledCondition))
	}
	var inventory []string
	for _, entry := range app.Status.Inventory {
		inventory = append(inventory, entry.Name)
	}
	for _, want := range []string{"slow-1-first", "slow-1-stuck-1"} {
		if !slices.Contains(inventory, want) {
			t.Errorf("inventory %v lacks %s, which the stopped sync applied", inventory, want)
		}
	}
	if _, err := e.cs.AppsV1().Deployments(appNS).Get(ctx, "slow-1-stuck-2", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("wave 2 was applied although wave 1 never became healthy: %v", err)
	}
	if c := apimeta.FindStatusCondition(app.Status.Conditions, kv1.ReadyCondition); !strings.Contains(c.Message, "Deployment/slow-1-stuck-1") {
		t.Errorf("the message does not say where the sync was: %s", c.Message)
	}
}

package controller_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/cli"
)

// shopChart returns the migration chart the engine and CLI tests share
// (internal/lifecycle/testdata/shop) as repository files under chart/, with
// image.tag and migrate.fail set in its values.yaml.
func shopChart(t *testing.T, tag string, failMigration bool) map[string]string {
	t.Helper()
	const dir = "../lifecycle/testdata/shop"
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		rel, _ := filepath.Rel(dir, path)
		files["chart/"+filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	files["chart/values.yaml"] = fmt.Sprintf("image:\n  tag: %q\nmigrate:\n  fail: %v\n", tag, failMigration)
	return files
}

// grantJobs lets the deployer run Jobs (the namespaced install grants only
// the kinds of the demo).
func (e *env) grantJobs() {
	e.t.Helper()
	ctx := e.t.Context()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "deployer-jobs", Namespace: appNS},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"get", "list", "watch", "create", "patch", "update", "delete"}}}}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "deployer-jobs", Namespace: appNS},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "deployer-jobs"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "keyless-deployer", Namespace: appNS}}}
	for _, o := range []client.Object{role, binding} {
		if err := e.admin.Create(ctx, o); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *env) migrationJob() *batchv1.Job {
	e.t.Helper()
	j, err := e.cs.BatchV1().Jobs(appNS).Get(e.t.Context(), "shop-migrate", metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return j
}

// scaleShopAndWaitReverted edits the Deployment's replicas (drift) and
// waits until selfHeal put them back.
func (e *env) scaleShopAndWaitReverted() {
	e.t.Helper()
	ctx := e.t.Context()
	d, err := e.cs.AppsV1().Deployments(appNS).Get(ctx, "shop", metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	d.Spec.Replicas = ptr.To(int32(5))
	if _, err := e.cs.AppsV1().Deployments(appNS).Update(ctx, d, metav1.UpdateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	waitFor(e.t, 30*time.Second, "drift reverted", func() (bool, string) {
		d, err := e.cs.AppsV1().Deployments(appNS).Get(ctx, "shop", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return *d.Spec.Replicas == 1, fmt.Sprintf("replicas %d", *d.Spec.Replicas)
	})
}

func (e *env) shopImage() string {
	e.t.Helper()
	d, err := e.cs.AppsV1().Deployments(appNS).Get(e.t.Context(), "shop", metav1.GetOptions{})
	if err != nil {
		return ""
	}
	return d.Spec.Template.Spec.Containers[0].Image
}

// TestMigrationHookRunsOnEveryBump is the seed's flow with a database
// migration: CI bumps image.tag with `keyless bump`, the controller runs the
// migration Job (a new one each time) to completion before the Deployment's
// image changes, records the hook in history and the audit line, a drift
// revert runs no hook, and a failing migration keeps the last good image.
func TestMigrationHookRunsOnEveryBump(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.grantJobs()
	e.startController(time.Hour)
	e.push(shopChart(t, "1.0", false), nil, "shop chart")
	e.createApp("shop", "chart", kv1.MinInterval)
	got := e.waitApp("shop", "first sync", 90*time.Second, ready)
	if h := got.Status.History; len(h) == 0 || len(h[0].Hooks) != 1 || h[0].Hooks[0].Name != "shop-migrate" || h[0].Hooks[0].Phase != "PreSync" || h[0].Hooks[0].Result != "Succeeded" {
		t.Fatalf("history after the first sync: %+v", got.Status.History)
	}
	if got.Status.Operation != nil {
		t.Errorf("status.operation left set after the sync: %+v", got.Status.Operation)
	}
	for _, inv := range got.Status.Inventory {
		if inv.Kind == "Job" {
			t.Errorf("the hook Job is in the inventory: %+v", got.Status.Inventory)
		}
	}

	t.Setenv("KEYLESS_TEST_GIT_TOKEN", gitToken)
	uid := e.migrationJob().UID
	for _, tag := range []string{"1.1", "1.2"} {
		var out, errOut bytes.Buffer
		code := cli.Run(ctx, []string{"bump", "--repo", e.git.RepoURL(repoName), "--file", "chart/values.yaml", "--set", "image.tag=" + tag,
			"--push", "--token-env", "KEYLESS_TEST_GIT_TOKEN", "--token-username", "ci"}, cli.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
		if code != 0 {
			t.Fatalf("keyless bump %s: exit %d\n%s%s", tag, code, out.String(), errOut.String())
		}
		sha := strings.TrimSpace(out.String())
		e.waitApp("shop", "synced at the bump to "+tag, 90*time.Second, func(a *kv1.Application) bool {
			return ready(a) && a.Status.LastAppliedRevision == sha
		})
		job := e.migrationJob()
		if job.UID == uid {
			t.Fatalf("bump to %s: the migration Job was not run again", tag)
		}
		uid = job.UID
		if img := job.Spec.Template.Spec.Containers[0].Image; img != "registry.example.com/shop:"+tag || job.Status.CompletionTime == nil {
			t.Fatalf("bump to %s: migration Job runs %s, completed %v", tag, img, job.Status.CompletionTime)
		}
		if img := e.shopImage(); img != "registry.example.com/shop:"+tag {
			t.Fatalf("bump to %s: Deployment runs %s", tag, img)
		}
	}
	recs := e.audit.records(t)
	if last := recs[len(recs)-1]; len(last.Hooks) != 1 || last.Hooks[0].Name != "shop-migrate" {
		t.Errorf("the audit line does not record the hook run: %+v", last)
	}

	t.Log("a drift revert does not re-run the migration")
	e.scaleShopAndWaitReverted()
	if e.migrationJob().UID != uid {
		t.Error("reverting drift re-ran the migration hook")
	}

	t.Log("a failing migration keeps the last good image and runs SyncFail")
	bad := e.push(shopChart(t, "1.3", true), nil, "shop 1.3 with a broken migration")
	failed := e.waitApp("shop", "the failed hook reported", 90*time.Second, func(a *kv1.Application) bool {
		return a.Status.LastAttemptedRevision == bad && apimeta.IsStatusConditionTrue(a.Status.Conditions, kv1.StalledCondition)
	})
	stalled := ""
	for _, c := range failed.Status.Conditions {
		if c.Type == kv1.StalledCondition {
			stalled = c.Reason + ": " + c.Message
		}
	}
	if !strings.HasPrefix(stalled, kv1.ReasonHookFailed) || !strings.Contains(stalled, "Job/shop-migrate") || !strings.Contains(stalled, "SyncFail hooks ran: ConfigMap/shop-sync-failed-") {
		t.Errorf("Stalled condition = %q, want HookFailed naming the hook and the SyncFail run", stalled)
	}
	if img := e.shopImage(); img != "registry.example.com/shop:1.2" {
		t.Errorf("after the failed migration the Deployment runs %s, want the last good 1.2", img)
	}
	if h := failed.Status.History[0]; h.Result != kv1.SyncResultFailed || len(h.Hooks) != 2 || h.Hooks[1].Phase != "SyncFail" {
		t.Errorf("history of the failed sync: %+v", h)
	}
	if _, err := e.cs.BatchV1().Jobs(appNS).Get(ctx, "shop-cleanup", metav1.GetOptions{}); err == nil {
		t.Fatal("the pre-delete hook ran during a sync")
	}

	t.Log("a drift revert after the failed migration restores the last good revision, not the failed one without its migration")
	failedRun := e.migrationJob().UID
	e.scaleShopAndWaitReverted()
	if img := e.shopImage(); img != "registry.example.com/shop:1.2" {
		t.Errorf("the drift revert applied %s, want the last good 1.2 (the 1.3 migration failed)", img)
	}
	if e.migrationJob().UID != failedRun {
		t.Error("the drift revert ran the migration hook")
	}

	t.Log("after a restart (a fresh Git cache, no watch yet) a drift revert still restores the last good revision")
	e.stopController()
	reconciles := reconcileCount(t)
	e.startController(time.Hour)
	waitFor(t, 20*time.Second, "the first reconcile after the restart", func() (bool, string) {
		n := reconcileCount(t)
		return n > reconciles, fmt.Sprint(n)
	})
	e.editUntilReverted("shop")
	if img := e.shopImage(); img != "registry.example.com/shop:1.2" {
		t.Errorf("after a restart the drift revert applied %s, want the last good 1.2", img)
	}

	t.Log("deleting the Application runs its pre-delete hook, then deletes what it deployed")
	if err := e.admin.Delete(ctx, e.app("shop")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the Application is gone", func() (bool, string) {
		err := e.admin.Get(ctx, client.ObjectKey{Namespace: appNS, Name: "shop"}, &kv1.Application{})
		return err != nil, errString(err)
	})
	cleanup, err := e.cs.BatchV1().Jobs(appNS).Get(ctx, "shop-cleanup", metav1.GetOptions{})
	if err != nil || cleanup.Status.CompletionTime == nil || cleanup.Labels["keyless.dev/hook-phase"] != "PreDelete" {
		t.Fatalf("pre-delete hook: %v %+v\nEvents:\n%s", err, cleanup.Status, e.events(appNS))
	}
	if img := e.shopImage(); img != "" {
		t.Errorf("the Deployment survived the Application's deletion (image %s)", img)
	}
}

// events lists a namespace's Events, oldest first, for a failure message.
func (e *env) events(ns string) string {
	list, err := e.cs.CoreV1().Events(ns).List(e.t.Context(), metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, ev := range list.Items {
		fmt.Fprintf(&b, "  %s %s/%s %s: %s\n", ev.Type, ev.InvolvedObject.Kind, ev.InvolvedObject.Name, ev.Reason, ev.Message)
	}
	return b.String()
}

// TestHookTimeoutStopsTheSync: a PreSync hook that never completes (a
// suspended Job) stops the sync after the controller's --hook-timeout: the
// Application says which hook, nothing of the Sync phase is applied, and the
// worker is free again (the next commit syncs).
func TestHookTimeoutStopsTheSync(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.grantJobs()
	e.hookTimeout = 3 * time.Second
	e.startController(time.Hour)
	stuck := "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: stuck-migrate\n  annotations:\n    argocd.argoproj.io/hook: PreSync\n" +
		"spec:\n  suspend: true\n  template:\n    spec:\n      restartPolicy: Never\n      securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}\n" +
		"      containers:\n      - name: m\n        image: registry.example.com/m:1\n        securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}\n"
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: stuck-config\ndata:\n  a: b\n"
	e.push(map[string]string{"stuck/job.yaml": stuck, "stuck/cm.yaml": cm}, nil, "a migration that never runs")
	started := time.Now()
	e.createApp("stuck", "stuck", kv1.MinInterval)
	app := e.waitApp("stuck", "the hook timeout reported", 60*time.Second, func(a *kv1.Application) bool {
		return apimeta.IsStatusConditionTrue(a.Status.Conditions, kv1.StalledCondition)
	})
	c := apimeta.FindStatusCondition(app.Status.Conditions, kv1.StalledCondition)
	if c.Reason != kv1.ReasonHookFailed || !strings.Contains(c.Message, "Job/stuck-migrate") {
		t.Errorf("Stalled = %s: %s, want HookFailed naming Job/stuck-migrate", c.Reason, c.Message)
	}
	if _, err := e.cs.CoreV1().ConfigMaps(appNS).Get(ctx, "stuck-config", metav1.GetOptions{}); err == nil {
		t.Error("the Sync phase was applied although its PreSync hook never completed")
	}
	t.Logf("stalled %s after the Application was created (hook timeout 3s)", time.Since(started).Round(100*time.Millisecond))

	fixed := strings.Replace(stuck, "suspend: true", "suspend: false", 1)
	sha := e.push(map[string]string{"stuck/job.yaml": fixed}, nil, "the migration runs")
	e.waitApp("stuck", "the next commit synced", 60*time.Second, func(a *kv1.Application) bool {
		return ready(a) && a.Status.LastAppliedRevision == sha
	})
}

// editUntilReverted edits Deployment name's replicas (drift) until selfHeal
// puts them back. A watch started by a reconcile lists the Deployment
// before it reports edits, and no test can see when it has: an edit made in
// that window is part of the list, not an event. So the edit is repeated
// every 3 s until one is reverted.
func (e *env) editUntilReverted(name string) {
	e.t.Helper()
	ctx := e.t.Context()
	waitFor(e.t, 40*time.Second, "an edit of Deployment "+name+" reverted", func() (bool, string) {
		d, err := e.cs.AppsV1().Deployments(appNS).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		edited, _ := time.Parse(time.RFC3339Nano, d.Annotations["edited"])
		if *d.Spec.Replicas == 1 && !edited.IsZero() {
			return true, ""
		}
		if time.Since(edited) > 3*time.Second {
			d.Spec.Replicas = ptr.To(int32(5))
			if d.Annotations == nil {
				d.Annotations = map[string]string{}
			}
			d.Annotations["edited"] = time.Now().Format(time.RFC3339Nano)
			_, _ = e.cs.AppsV1().Deployments(appNS).Update(ctx, d, metav1.UpdateOptions{})
		}
		return false, fmt.Sprintf("replicas %d", *d.Spec.Replicas)
	})
}

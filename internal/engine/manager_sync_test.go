package engine

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/keyless-cd/keyless/internal/lifecycle"
	"github.com/keyless-cd/keyless/internal/render"
)

// shopChart is the migration chart the engine, CLI and controller tests
// share: a pre-install,pre-upgrade Job with the app's image, a SyncFail
// hook, a pre-delete hook and the Deployment.
const shopChart = "../lifecycle/testdata/shop"

func renderChart(t *testing.T, ns string, values map[string]any) []*unstructured.Unstructured {
	t.Helper()
	res, err := render.Render(t.Context(), render.Options{Root: shopChart, Path: ".", Namespace: ns, Helm: render.HelmOptions{ReleaseName: "shop", Values: values}})
	if err != nil {
		t.Fatal(err)
	}
	return res.Objects
}

// TestHelmMigrationHookRunsBeforeTheDeploymentChanges is the issue's
// migration case: the pre-upgrade Job runs (again, as a new Job) and
// completes before the Deployment's image changes, and a failing migration
// leaves the old image running and runs the SyncFail hook.
func TestHelmMigrationHookRunsBeforeTheDeploymentChanges(t *testing.T) {
	ctx := t.Context()
	e := newEngine(t)
	cs := clientset(t)
	ns := newNamespace(t)
	opts := ApplyOptions{Namespace: ns, Name: "shop", Prune: true, WaitInterval: 200 * time.Millisecond, StepTimeout: time.Minute}

	var lastJobUID string
	for i, tag := range []string{"1.0", "1.1", "1.2"} {
		res, err := e.Apply(ctx, renderChart(t, ns, map[string]any{"image": map[string]any{"tag": tag}}), opts)
		if err != nil {
			t.Fatalf("sync %d (tag %s): %v", i+1, tag, err)
		}
		if len(res.Hooks) != 1 || res.Hooks[0].Phase != lifecycle.PhasePreSync || res.Hooks[0].Result != HookSucceeded {
			t.Fatalf("sync %d hooks = %+v, want one succeeded PreSync run", i+1, res.Hooks)
		}
		job, err := cs.BatchV1().Jobs(ns).Get(ctx, "shop-migrate", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if string(job.UID) == lastJobUID {
			t.Fatalf("sync %d reused the previous migration Job; before-hook-creation must replace it", i+1)
		}
		lastJobUID = string(job.UID)
		if got := job.Spec.Template.Spec.Containers[0].Image; got != "registry.example.com/shop:"+tag {
			t.Errorf("migration image = %s, want tag %s", got, tag)
		}
		if job.Status.CompletionTime == nil {
			t.Fatalf("sync %d returned before the migration Job completed", i+1)
		}
		// The ReplicaSet of this tag was created after the migration completed
		// (resourceVersions are etcd revisions: they order every write).
		rs := replicaSetOf(t, ns, "registry.example.com/shop:"+tag)
		if rvOf(t, rs.ResourceVersion) < rvOf(t, job.ResourceVersion) {
			t.Errorf("sync %d: ReplicaSet for %s (rv %s) was written before the migration Job finished (rv %s)", i+1, tag, rs.ResourceVersion, job.ResourceVersion)
		}
		if job.Labels[HookPhaseLabel] != string(lifecycle.PhasePreSync) || job.Labels[InventoryLabel] != "shop" {
			t.Errorf("hook Job labels = %v, want inventory and phase", job.Labels)
		}
	}
	inv, err := (&ConfigMapStore{Client: e.Client(), Namespace: ns, Name: "shop"}).Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range inv.Entries {
		if r.Kind == "Job" {
			t.Errorf("the hook Job is in the prune inventory: %v", inv.Entries)
		}
	}

	// A failing migration: the Deployment keeps 1.2, the error names the hook, SyncFail ran.
	_, err = e.Apply(ctx, renderChart(t, ns, map[string]any{"image": map[string]any{"tag": "1.3"}, "migrate": map[string]any{"fail": true}}), opts)
	var he *HookError
	if !errors.As(err, &he) || he.Hook.Name != "shop-migrate" || he.Phase != lifecycle.PhasePreSync {
		t.Fatalf("failed migration: err = %v, want a *HookError naming the PreSync hook Job/shop-migrate", err)
	}
	if !IsPermanent(err) {
		t.Error("a failed hook must be permanent (retried on the next commit or interval, not in a hot loop)")
	}
	if len(he.SyncFail) != 1 || he.SyncFail[0].Result != HookSucceeded || !strings.HasPrefix(he.SyncFail[0].Ref.Name, "shop-sync-failed-") {
		t.Errorf("SyncFail runs = %+v, want the sync-failed ConfigMap", he.SyncFail)
	}
	d, err := cs.AppsV1().Deployments(ns).Get(ctx, "shop", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Spec.Template.Spec.Containers[0].Image; got != "registry.example.com/shop:1.2" {
		t.Errorf("after the failed migration the Deployment runs %s, want the last good 1.2", got)
	}
}

// replicaSetOf returns the ReplicaSet running image, waiting for the
// Deployment controller to create it (an apply returns before it does).
func replicaSetOf(t *testing.T, ns, image string) metav1.ObjectMeta {
	t.Helper()
	var found metav1.ObjectMeta
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		list, err := clientset(t).AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, rs := range list.Items {
			if rs.Spec.Template.Spec.Containers[0].Image == image {
				found = rs.ObjectMeta
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("no ReplicaSet runs %s: %v", image, err)
	}
	return found
}

func rvOf(t *testing.T, rv string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(rv, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestArgoGenerateNameHooks: an Argo CD style kustomize app with generateName
// PreSync and PostSync Jobs and HookSucceeded. PostSync starts only after the
// Deployment is Available; the succeeded hook Jobs are deleted.
func TestArgoGenerateNameHooks(t *testing.T) {
	ctx := t.Context()
	e := newEngine(t)
	cs := clientset(t)
	ns := newNamespace(t)
	hook := func(phase, prefix string) string {
		return `apiVersion: batch/v1
kind: Job
metadata:
  generateName: ` + prefix + `
  annotations:
    argocd.argoproj.io/hook: ` + phase + `
    argocd.argoproj.io/hook-delete-policy: HookSucceeded
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: run
        image: registry.example.com/tools:1
`
	}
	objs := renderFiles(t, map[string]string{
		"pre.yaml":    hook("PreSync", "db-check-"),
		"deploy.yaml": deployment("web", "registry.example.com/web:1", ""),
		"post.yaml":   hook("PostSync", "smoke-"),
	})
	var order []string
	opts := ApplyOptions{Namespace: ns, Name: "web", WaitInterval: 200 * time.Millisecond, StepTimeout: time.Minute, OnStep: func(p StepProgress) {
		if len(p.Waiting) == 0 {
			order = append(order, string(p.Phase))
		}
	}}
	res, err := e.Apply(ctx, objs, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(order, ","); got != "PreSync,Sync,PostSync" {
		t.Errorf("steps ran in order %s", got)
	}
	if len(res.Hooks) != 2 || res.Hooks[0].Phase != lifecycle.PhasePreSync || res.Hooks[1].Phase != lifecycle.PhasePostSync {
		t.Fatalf("hooks = %+v", res.Hooks)
	}
	for _, h := range res.Hooks {
		if h.Result != HookSucceeded || !h.Deleted {
			t.Errorf("hook %s: result %s deleted %v, want Succeeded and deleted (HookSucceeded)", h.Ref, h.Result, h.Deleted)
		}
	}
	if !strings.HasPrefix(res.Hooks[1].Ref.Name, "smoke-") {
		t.Errorf("PostSync hook name %q, want a generated smoke-… name", res.Hooks[1].Ref.Name)
	}
	d, err := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	available := false
	for _, c := range d.Status.Conditions {
		if c.Type == "Available" && c.Status == "True" {
			available = true
		}
	}
	if !available {
		t.Error("the PostSync phase ran before the Deployment was Available")
	}
	jobs, err := cs.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{LabelSelector: HookLabel})
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs.Items {
		if j.DeletionTimestamp == nil {
			t.Errorf("succeeded hook Job %s was not deleted", j.Name)
		}
	}

	// A drift revert (SkipHooks) runs no hook.
	res, err = e.Apply(ctx, objs, ApplyOptions{Namespace: ns, Name: "web", SkipHooks: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Hooks) != 0 {
		t.Errorf("a revert ran hooks: %+v", res.Hooks)
	}
}

// TestWavesWaitForHealth: wave 1 is not applied before wave 0 (a Job) is
// complete, and wave -1 came first.
func TestWavesWaitForHealth(t *testing.T) {
	ctx := t.Context()
	e := newEngine(t)
	cs := clientset(t)
	ns := newNamespace(t)
	wave := func(doc, w string) string {
		return strings.Replace(doc, "metadata:\n", "metadata:\n  annotations:\n    argocd.argoproj.io/sync-wave: \""+w+"\"\n", 1)
	}
	objs := renderFiles(t, map[string]string{
		"a.yaml": wave(configMap("early", "x"), "-1"),
		"b.yaml": wave(`apiVersion: batch/v1
kind: Job
metadata:
  name: seed
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: seed
        image: registry.example.com/seed:1
`, "0"),
		"c.yaml": wave(configMap("late", "y"), "1"),
	})
	res, err := e.Apply(ctx, objs, ApplyOptions{Namespace: ns, Name: "waves", WaitInterval: 200 * time.Millisecond, StepTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	job, err := cs.BatchV1().Jobs(ns).Get(ctx, "seed", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !jobComplete(job) {
		t.Fatal("the Job of wave 0 is not complete")
	}
	early, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "early", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	late, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "late", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// ConfigMaps are written once, so their resourceVersion is their creation's
	// etcd revision; the Job's is its last (completion) write.
	if rvOf(t, late.ResourceVersion) < rvOf(t, job.ResourceVersion) {
		t.Errorf("wave 1 ConfigMap (rv %s) was created before the wave 0 Job completed (rv %s)", late.ResourceVersion, job.ResourceVersion)
	}
	if !job.CreationTimestamp.After(early.CreationTimestamp.Time) && job.CreationTimestamp != early.CreationTimestamp {
		t.Error("wave 0 was created before wave -1")
	}
	for _, c := range res.Changes {
		if c.Ref.Name == "late" && (c.Phase != lifecycle.PhaseSync || c.Wave != 1) {
			t.Errorf("change %+v does not name its phase and wave", c)
		}
	}
}

func jobComplete(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobComplete && c.Status == "True" {
			return true
		}
	}
	return false
}

// TestImmutableChangeNeedsReplace: a non-hook Job whose template changes is
// refused with the Replace hint; with Replace=true it is recreated.
func TestImmutableChangeNeedsReplace(t *testing.T) {
	ctx := t.Context()
	e := newEngine(t)
	cs := clientset(t)
	ns := newNamespace(t)
	job := func(image, ann string) string {
		return "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: once\n" + ann + "spec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: run\n        image: " + image + "\n"
	}
	opts := ApplyOptions{Namespace: ns, Name: "once", WaitInterval: 200 * time.Millisecond, StepTimeout: time.Minute}
	if _, err := e.Apply(ctx, renderFiles(t, map[string]string{"job.yaml": job("registry.example.com/run:1", "")}), opts); err != nil {
		t.Fatal(err)
	}
	before, err := cs.BatchV1().Jobs(ns).Get(ctx, "once", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Apply(ctx, renderFiles(t, map[string]string{"job.yaml": job("registry.example.com/run:2", "")}), opts)
	var im *ImmutableError
	if !errors.As(err, &im) || im.Ref.String() != "Job/once" || !strings.Contains(err.Error(), "Replace=true") {
		t.Fatalf("err = %v, want an *ImmutableError naming Job/once with the Replace hint", err)
	}
	if _, err := e.Diff(ctx, renderFiles(t, map[string]string{"job.yaml": job("registry.example.com/run:2", "")}), DiffOptions{Namespace: ns, Name: "once"}); !errors.As(err, &im) {
		t.Errorf("diff: err = %v, want the same *ImmutableError", err)
	}

	replace := "  annotations:\n    argocd.argoproj.io/sync-options: Replace=true\n"
	diff, err := e.Diff(ctx, renderFiles(t, map[string]string{"job.yaml": job("registry.example.com/run:2", replace)}), DiffOptions{Namespace: ns, Name: "once"})
	if err != nil {
		t.Fatal(err)
	}
	wantActions(t, diff, map[string]Action{"Job/once": ActionReplaced})
	res, err := e.Apply(ctx, renderFiles(t, map[string]string{"job.yaml": job("registry.example.com/run:2", replace)}), opts)
	if err != nil {
		t.Fatal(err)
	}
	wantActions(t, res, map[string]Action{"Job/once": ActionReplaced})
	after, err := cs.BatchV1().Jobs(ns).Get(ctx, "once", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if after.UID == before.UID || after.Spec.Template.Spec.Containers[0].Image != "registry.example.com/run:2" {
		t.Errorf("Job was not recreated with the new template (uid %s → %s)", before.UID, after.UID)
	}

	// An Application's syncOptions Replace=true (ReplaceAll) does the same for every object.
	all := opts
	all.ReplaceAll = true
	res, err = e.Apply(ctx, renderFiles(t, map[string]string{"job.yaml": job("registry.example.com/run:3", "")}), all)
	if err != nil {
		t.Fatal(err)
	}
	wantActions(t, res, map[string]Action{"Job/once": ActionReplaced})
}

// TestOwnNamespaceManifestIsSkipped: an overlay's namespace.yaml naming the
// target namespace is skipped with a warning; another namespace is refused.
func TestOwnNamespaceManifestIsSkipped(t *testing.T) {
	ctx := t.Context()
	e := newEngine(t)
	ns := newNamespace(t)
	objs := renderFiles(t, map[string]string{
		"kustomization.yaml": "resources: [namespace.yaml, cm.yaml]\n",
		"namespace.yaml":     "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + ns + "\n  labels:\n    team: shop\n",
		"cm.yaml":            configMap("settings", "1"),
	})
	res, err := e.Apply(ctx, objs, ApplyOptions{Namespace: ns, Name: "overlay"})
	if err != nil {
		t.Fatal(err)
	}
	wantActions(t, res, map[string]Action{"ConfigMap/settings": ActionCreated})
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "Namespace/"+ns+" skipped") || !strings.Contains(res.Warnings[0], "team=shop is not set") {
		t.Errorf("warnings = %q, want the skipped Namespace and its missing label", res.Warnings)
	}
	other := renderFiles(t, map[string]string{"kustomization.yaml": "resources: [namespace.yaml, cm.yaml]\n", "namespace.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: someone-else\n", "cm.yaml": configMap("settings", "1")})
	if _, err := e.Apply(ctx, other, ApplyOptions{Namespace: ns, Name: "overlay"}); !errors.Is(err, ErrRefused) {
		t.Errorf("a Namespace of another name: err = %v, want ErrRefused", err)
	}
}

// TestPreDeleteHookThatCannotRunStopsTheDeletion: removing a whole set
// runs its PreDelete hooks first; when one cannot even be created (here an
// object of its name exists that keyless did not make), nothing is pruned,
// as when the hook fails — Helm's uninstall and Argo CD stop there too.
func TestPreDeleteHookThatCannotRunStopsTheDeletion(t *testing.T) {
	ctx := t.Context()
	e := newEngine(t)
	cs := clientset(t)
	ns := newNamespace(t)
	opts := ApplyOptions{Namespace: ns, Name: "shop", Prune: true, WaitInterval: 200 * time.Millisecond, StepTimeout: time.Minute}
	objs := renderChart(t, ns, map[string]any{"image": map[string]any{"tag": "1.0"}})
	if _, err := e.Apply(ctx, objs, opts); err != nil {
		t.Fatal(err)
	}
	var deleteHooks []*unstructured.Unstructured
	for _, o := range objs {
		if l, _ := lifecycle.Of(o, false); l.Has(lifecycle.PhasePreDelete) {
			deleteHooks = append(deleteHooks, o)
		}
	}
	if len(deleteHooks) != 1 {
		t.Fatalf("the chart has %d pre-delete hooks, want 1", len(deleteHooks))
	}
	squatter := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "shop-cleanup", Namespace: ns}, Spec: batchv1.JobSpec{Suspend: ptr.To(true),
		Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "c", Image: "x"}}}}}}
	if _, err := cs.BatchV1().Jobs(ns).Create(ctx, squatter, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	opts.AllowEmpty = true
	res, err := e.Apply(ctx, deleteHooks, opts)
	var he *HookError
	if !errors.As(err, &he) || he.Phase != lifecycle.PhasePreDelete || he.Hook.Name != "shop-cleanup" {
		t.Fatalf("deleting with an uncreatable pre-delete hook: err = %v (result %+v), want a *HookError naming it", err, res)
	}
	if _, err := cs.AppsV1().Deployments(ns).Get(ctx, "shop", metav1.GetOptions{}); err != nil {
		t.Fatalf("the Deployment was deleted although its pre-delete hook never ran: %v", err)
	}
}

package controller_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/controller"
)

func syncsOf(recs []controller.AuditRecord, app string) []string {
	var revs []string
	for _, r := range recs {
		if r.App == app {
			revs = append(revs, r.Revision)
		}
	}
	return revs
}

// TestShardsOwnTheirApplications: a controller without --shard owns the
// unlabelled Applications and one with --shard b those labelled
// sharding.keyless.dev/key=b, each synced by exactly one of them; relabelling
// an Application hands it over: the next commit is synced once, by the new
// owner, and the handover itself syncs nothing.
func TestShardsOwnTheirApplications(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	files := manifests("registry.example.com/web:1.0", "hello")
	files["api/cm.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: api-settings\ndata:\n  a: \"1\"\n"
	first := e.push(files, nil, "two applications")
	e.startController(time.Hour)
	b := e.startControllerProcess("--shard", "b", "--allow-insecure-http") // the Git server is loopback HTTP
	e.createApp("web", "deploy", time.Hour)
	api := &kv1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: appNS, Labels: map[string]string{kv1.ShardLabel: "b"}},
		Spec: kv1.ApplicationSpec{
			Source: kv1.ApplicationSource{RepoURL: e.git.RepoURL(repoName), TargetRevision: "main", Path: "api",
				SecretRef: &kv1.LocalObjectReference{Name: "myapp-git"}},
			SyncPolicy: &kv1.SyncPolicy{Automated: &kv1.AutomatedSyncPolicy{Prune: true, SelfHeal: true}},
		},
	}
	if err := e.admin.Create(ctx, api); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"web", "api"} {
		e.waitApp(name, "Ready", 60*time.Second, func(a *kv1.Application) bool { return ready(a) && a.Status.LastAppliedRevision == first })
	}
	if got := syncsOf(e.audit.records(t), "api"); len(got) != 0 {
		t.Fatalf("the unsharded controller synced the shard-b Application: %v", got)
	}
	if got := syncsOf(auditLines(t, b.logs(t), true), "web"); len(got) != 0 {
		t.Fatalf("shard b synced the unlabelled Application: %v", got)
	}
	if got := syncsOf(auditLines(t, b.logs(t), true), "api"); len(got) == 0 {
		t.Fatal("shard b did not sync its Application")
	}

	t.Log("relabelling web hands it to shard b")
	webSyncsA := len(syncsOf(e.audit.records(t), "web"))
	web := e.app("web")
	patch := client.MergeFrom(web.DeepCopy())
	web.Labels = map[string]string{kv1.ShardLabel: "b"}
	if err := e.admin.Patch(ctx, web, patch); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // both controllers see the label change
	if got := syncsOf(auditLines(t, b.logs(t), true), "web"); len(got) != 0 {
		t.Fatalf("the handover itself made shard b sync web: %v", got)
	}
	next := e.bumpTo("registry.example.com/web:1.1")
	requestSync(t, e, "after the handover")
	e.waitApp("web", "synced by shard b", 30*time.Second, func(a *kv1.Application) bool { return ready(a) && a.Status.LastAppliedRevision == next })
	if got := syncsOf(auditLines(t, b.logs(t), true), "web"); len(got) != 1 || got[0] != next {
		t.Fatalf("shard b's syncs of web: %v, want exactly %s", got, next)
	}
	if n := len(syncsOf(e.audit.records(t), "web")); n != webSyncsA {
		t.Fatalf("the old owner synced web after the handover (%d → %d)", webSyncsA, n)
	}
	var atNext int
	for _, h := range e.app("web").Status.History {
		if h.Revision == next {
			atNext++
		}
	}
	if atNext != 1 {
		t.Fatalf("history holds %s %d times", next, atNext)
	}
	if _, err := e.cs.AppsV1().Deployments(appNS).Get(ctx, "web", metav1.GetOptions{}); err != nil {
		t.Fatalf("the handover lost the Deployment: %v", err)
	}
}

// TestMisplacedShardLabelIsReported: the cluster admin decides which
// namespaces each shard serves (--shard-namespaces, given to the unsharded
// controller; each shard runs with those --namespaces). A namespace admin
// who labels an Application for a shard that does not serve the namespace
// (one run with looser flags, or a typo) sees it reported, naming the
// label and the shards that do serve it, and nothing is synced — instead
// of an Application nobody reconciles. An unlabelled Application next to
// it syncs as usual.
func TestMisplacedShardLabelIsReported(t *testing.T) {
	e := newEnv(t, "team-b")
	ctx := t.Context()
	e.shardNamespaces = controller.ShardNamespaces{"loose": {"team-b"}}
	first := e.push(manifests("registry.example.com/web:1.0", "hello"), nil, "web")
	e.startController(time.Hour)
	e.createApp("web", "deploy", time.Hour)
	for _, shard := range []string{"loose", "typo"} {
		app := &kv1.Application{
			ObjectMeta: metav1.ObjectMeta{Name: "to-" + shard, Namespace: appNS, Labels: map[string]string{kv1.ShardLabel: shard}},
			Spec: kv1.ApplicationSpec{Source: kv1.ApplicationSource{RepoURL: e.git.RepoURL(repoName), TargetRevision: "main", Path: "deploy",
				SecretRef: &kv1.LocalObjectReference{Name: "myapp-git"}}},
		}
		if err := e.admin.Create(ctx, app); err != nil {
			t.Fatal(err)
		}
	}
	for _, shard := range []string{"loose", "typo"} {
		app := e.waitApp("to-"+shard, "reported as misplaced", 30*time.Second, func(a *kv1.Application) bool {
			return strings.Contains(condition(a, kv1.StalledCondition), controller.ReasonShardRefused)
		})
		msg := condition(app, kv1.StalledCondition)
		if !strings.Contains(msg, kv1.ShardLabel+"="+shard) || !strings.Contains(msg, "namespace "+appNS) {
			t.Errorf("the report %q names neither the label nor the namespace", msg)
		}
		if app.Status.LastAppliedRevision != "" || len(app.Finalizers) != 0 {
			t.Errorf("%s was synced (%q) or claimed (%v) by a controller that does not own it", app.Name, app.Status.LastAppliedRevision, app.Finalizers)
		}
	}
	e.waitApp("web", "the unlabelled Application Ready", 60*time.Second, func(a *kv1.Application) bool {
		return ready(a) && a.Status.LastAppliedRevision == first
	})

	t.Log("the synced Application labelled for a shard that does not serve it: reported, and still cleaned up when deleted")
	web := e.app("web")
	patch := client.MergeFrom(web.DeepCopy())
	web.Labels = map[string]string{kv1.ShardLabel: "loose"}
	if err := e.admin.Patch(ctx, web, patch); err != nil {
		t.Fatal(err)
	}
	e.waitApp("web", "reported as misplaced", 30*time.Second, func(a *kv1.Application) bool {
		return strings.Contains(condition(a, kv1.StalledCondition), controller.ReasonShardRefused)
	})
	if err := e.admin.Delete(ctx, web); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the Application and its objects gone", func() (bool, string) {
		err := e.admin.Get(ctx, client.ObjectKeyFromObject(web), &kv1.Application{})
		_, cmErr := e.cs.CoreV1().ConfigMaps(appNS).Get(ctx, "settings", metav1.GetOptions{})
		return apierrors.IsNotFound(err) && apierrors.IsNotFound(cmErr), fmt.Sprintf("app: %v, ConfigMap: %v", err, cmErr)
	})
}

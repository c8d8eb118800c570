package controller_test

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/ledger"
	"github.com/keyless-cd/keyless/internal/syncwindow"
)

// TestSyncWindows: an Application's deny window open now holds every
// sync (status says which window and until when, keyless get shows it);
// `keyless sync --override-window --reason` by a person syncs anyway and
// history, the sync's output and an Event record who and why; the next
// commit is held again; the cluster admin's windows (keyless-sync-windows
// in the controller's namespace) hold an Application that has none, here
// outside its only allow window.
func TestSyncWindows(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	first := e.push(map[string]string{"frozen/cm.yaml": configMapFile("frozen", "1"), "admin/cm.yaml": configMapFile("admin", "1")}, nil, "two apps")
	time.Sleep(1100 * time.Millisecond)
	records := withLedger(t, e)
	e.startController(5 * time.Second)

	app := &kv1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: "frozen", Namespace: appNS},
		Spec: kv1.ApplicationSpec{
			Source: kv1.ApplicationSource{RepoURL: e.git.RepoURL(repoName), TargetRevision: "main", Path: "frozen",
				SecretRef: &kv1.LocalObjectReference{Name: "myapp-git"}},
			SyncPolicy:  &kv1.SyncPolicy{Automated: &kv1.AutomatedSyncPolicy{Prune: true, SelfHeal: true}},
			Interval:    &metav1.Duration{Duration: 5 * time.Second},
			SyncWindows: []kv1.SyncWindow{{Kind: kv1.SyncWindowDeny, Schedule: "* * * * *", Duration: "2h", TimeZone: "Europe/Stockholm"}},
		},
	}
	if err := e.admin.Create(ctx, app); err != nil {
		t.Fatal(err)
	}
	a := e.waitApp("frozen", "held by its deny window", time.Minute, func(a *kv1.Application) bool {
		return readyReason(a) == kv1.ReasonSyncWindowClosed && a.Status.SyncWindow != nil
	})
	if until := a.Status.SyncWindow.Until.Time; until.Before(time.Now().Add(time.Hour)) || !strings.Contains(a.Status.SyncWindow.Window, "spec.syncWindows[0]") {
		t.Fatalf("status.syncWindow = %+v, want the window named and closed for about 2h", a.Status.SyncWindow)
	}
	if v := e.configMapValue("frozen"); v != "<none>" {
		t.Fatalf("applied during a deny window (ConfigMap frozen = %s)", v)
	}
	if code, out, _ := e.keyless("", "get", "apps", "-n", appNS); code != 0 || !strings.Contains(out, "sync window closed until") {
		t.Fatalf("keyless get apps does not show the closed window:\n%s", out)
	}
	if code, out, _ := e.keyless("", "get", "apps", "frozen", "-n", appNS, "-o", "wide"); code != 0 || !strings.Contains(out, "HELD") || !strings.Contains(out, "window closed until "+a.Status.SyncWindow.Until.UTC().Format("2006-01-02 15:04Z")+": ") {
		t.Fatalf("keyless get -o wide has no HELD column naming the window and until when:\n%s", out)
	}

	t.Run("an override with a reason syncs and is recorded", func(t *testing.T) {
		if code, _, errOut := e.keyless("", "sync", "frozen", "-n", appNS, "--override-window"); code == 0 || !strings.Contains(errOut, "--reason") {
			t.Fatalf("an override without a reason: %d %s", code, errOut)
		}
		code, out, errOut := e.keyless("", "sync", "frozen", "-n", appNS, "--override-window", "--reason", "INC-42 hotfix", "--as", "bob@example.com", "--as-group", "system:masters")
		if code != 0 || !strings.Contains(out, "overridden by bob@example.com: INC-42 hotfix") {
			t.Fatalf("sync --override-window: %d\n%s%s", code, out, errOut)
		}
		a := e.waitApp("frozen", "synced through the window", time.Minute, func(a *kv1.Application) bool { return a.Status.LastAppliedRevision == first })
		if h := a.Status.History[0]; h.WindowOverride != "bob@example.com: INC-42 hotfix" {
			t.Fatalf("history records override %q", h.WindowOverride)
		}
		if !strings.Contains(e.events(appNS), kv1.ReasonWindowOverridden) {
			t.Errorf("no %s Event:\n%s", kv1.ReasonWindowOverridden, e.events(appNS))
		}
		// The override is a ledger record of its own, before its sync's.
		all := records()
		o, s := ledgerRecord(all, ledger.KindOverride, "frozen"), ledgerRecord(all, ledger.KindSync, "frozen")
		if o == nil || o.By != "bob@example.com" || o.Reason != "INC-42 hotfix" || !strings.Contains(o.Window, "spec.syncWindows[0]") ||
			s == nil || s.Seq < o.Seq || s.WindowOverride != "bob@example.com: INC-42 hotfix" {
			t.Errorf("ledger: override %+v, sync %+v", o, s)
		}
		if code, _, _ := e.keyless("", "sync", "frozen", "-n", appNS); code == 0 {
			t.Error("a plain keyless sync went through the deny window")
		}
	})

	t.Run("the next commit is held again", func(t *testing.T) {
		next := e.push(map[string]string{"frozen/cm.yaml": configMapFile("frozen", "2")}, nil, "frozen 2")
		e.waitApp("frozen", "the new commit held", time.Minute, func(a *kv1.Application) bool {
			return readyReason(a) == kv1.ReasonSyncWindowClosed && a.Status.LastAppliedRevision != next
		})
		time.Sleep(3 * time.Second)
		if v := e.configMapValue("frozen"); v != "1" {
			t.Fatalf("ConfigMap frozen = %s during the window", v)
		}
	})

	t.Run("the cluster admin's windows hold an Application without its own", func(t *testing.T) {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: syncwindow.AdminConfigMap, Namespace: controlNS},
			Data: map[string]string{syncwindow.AdminKey: "- namespaces: [" + appNS + "]\n  kind: allow\n  schedule: \"0 3 29 2 *\"\n  duration: 1h\n"}}
		if err := e.admin.Create(ctx, cm); err != nil {
			t.Fatal(err)
		}
		time.Sleep(11 * time.Second) // the controller reads them at most every 10 s
		e.dependentApp("admin", "admin")
		a := e.waitApp("admin", "held outside the admin's allow window", time.Minute, func(a *kv1.Application) bool {
			return readyReason(a) == kv1.ReasonSyncWindowClosed
		})
		if w := a.Status.SyncWindow; w == nil || !strings.Contains(w.Window, "keyless-sync-windows[0]") || !strings.Contains(w.Window, "outside every allow window") {
			t.Fatalf("status.syncWindow = %+v", w)
		}
		if err := e.admin.Delete(ctx, cm); err != nil {
			t.Fatal(err)
		}
		e.waitApp("admin", "synced once the admin's window is gone", time.Minute, func(a *kv1.Application) bool { return ready(a) })
		var got corev1.ConfigMap
		if err := e.admin.Get(ctx, client.ObjectKey{Namespace: appNS, Name: "admin"}, &got); err != nil {
			t.Fatal(err)
		}
	})
}

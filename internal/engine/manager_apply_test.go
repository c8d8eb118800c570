package engine

import (
	"errors"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestApplyUpdatePruneReAdd(t *testing.T) {
	ctx := t.Context()
	e := newEngine(t)
	ns := newNamespace(t)
	cs := clientset(t)
	opts := ApplyOptions{Namespace: ns, Name: "web", Prune: true}

	files := map[string]string{
		"cm.yaml":     configMap("settings", "one"),
		"deploy.yaml": deployment("web", "registry.example.com/web:1.0", ""),
		"svc.yaml":    service("web"),
		"old.yaml":    configMap("old", "x"),
	}
	res, err := e.Apply(ctx, renderFiles(t, files), opts)
	if err != nil {
		t.Fatal(err)
	}
	wantActions(t, res, map[string]Action{"ConfigMap/settings": ActionCreated, "Deployment/web": ActionCreated, "Service/web": ActionCreated, "ConfigMap/old": ActionCreated})
	d, err := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Labels[InventoryLabel] != "web" || d.Labels[ManagedByLabel] != "keyless" {
		t.Errorf("labels = %v", d.Labels)
	}

	// Update: a ConfigMap value and the image.
	files["cm.yaml"] = configMap("settings", "two")
	files["deploy.yaml"] = deployment("web", "registry.example.com/web:2.0", "")
	res, err = e.Apply(ctx, renderFiles(t, files), opts)
	if err != nil {
		t.Fatal(err)
	}
	wantActions(t, res, map[string]Action{"ConfigMap/settings": ActionConfigured, "Deployment/web": ActionConfigured, "Service/web": ActionUnchanged, "ConfigMap/old": ActionUnchanged})
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "settings", metav1.GetOptions{})
	if err != nil || cm.Data["value"] != "two" {
		t.Fatalf("configmap after update: %v %v", cm.Data, err)
	}
	d, err = cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil || d.Spec.Template.Spec.Containers[0].Image != "registry.example.com/web:2.0" {
		t.Fatalf("image after update: %v", err)
	}

	// A file removed from the render is pruned.
	delete(files, "old.yaml")
	res, err = e.Apply(ctx, renderFiles(t, files), opts)
	if err != nil {
		t.Fatal(err)
	}
	if actions(res)["ConfigMap/old"] != ActionPruned {
		t.Fatalf("old not pruned: %v", actions(res))
	}
	if _, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "old", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("pruned ConfigMap still exists: %v", err)
	}

	// Re-added, it comes back.
	files["old.yaml"] = configMap("old", "back")
	res, err = e.Apply(ctx, renderFiles(t, files), opts)
	if err != nil {
		t.Fatal(err)
	}
	if actions(res)["ConfigMap/old"] != ActionCreated {
		t.Fatalf("re-added object: %v", actions(res))
	}
	if cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "old", metav1.GetOptions{}); err != nil || cm.Data["value"] != "back" {
		t.Fatalf("re-added ConfigMap: %v %v", cm, err)
	}
}

func TestPruneOffAndPruneDisabled(t *testing.T) {
	ctx := t.Context()
	e := newEngine(t)
	ns := newNamespace(t)
	cs := clientset(t)
	keep := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: keep\n  annotations:\n    keyless.dev/prune: disabled\n"
	files := map[string]string{"a.yaml": configMap("a", "1"), "b.yaml": configMap("b", "1"), "keep.yaml": keep}
	if _, err := e.Apply(ctx, renderFiles(t, files), ApplyOptions{Namespace: ns, Name: "app"}); err != nil {
		t.Fatal(err)
	}
	delete(files, "b.yaml")
	delete(files, "keep.yaml")

	// Without prune, b stays and is reported stale; it stays in the inventory.
	res, err := e.Apply(ctx, renderFiles(t, files), ApplyOptions{Namespace: ns, Name: "app"})
	if err != nil {
		t.Fatal(err)
	}
	if actions(res)["ConfigMap/b"] != ActionStale {
		t.Fatalf("actions %v", actions(res))
	}
	if _, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "b", metav1.GetOptions{}); err != nil {
		t.Fatalf("b deleted without prune: %v", err)
	}

	// With prune, b goes; keep (prune disabled) stays.
	res, err = e.Apply(ctx, renderFiles(t, files), ApplyOptions{Namespace: ns, Name: "app", Prune: true})
	if err != nil {
		t.Fatal(err)
	}
	wantActions(t, res, map[string]Action{"ConfigMap/a": ActionUnchanged, "ConfigMap/b": ActionPruned, "ConfigMap/keep": ActionPruneSkipped})
	if _, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "keep", metav1.GetOptions{}); err != nil {
		t.Fatalf("prune-disabled object deleted: %v", err)
	}
}

func TestNoOpApplyMakesZeroWrites(t *testing.T) {
	ctx := t.Context()
	e := newEngine(t)
	ns := newNamespace(t)
	files := map[string]string{
		"cm.yaml":     configMap("settings", "one"),
		"deploy.yaml": deployment("web", "registry.example.com/web:1.0", ""),
		"svc.yaml":    service("web"),
	}
	if _, err := e.Apply(ctx, renderFiles(t, files), ApplyOptions{Namespace: ns, Name: "web", Prune: true}); err != nil {
		t.Fatal(err)
	}
	// Let the controllers settle (they write Deployment/ReplicaSet status, not us).
	time.Sleep(2 * time.Second)
	before := cluster.Writes(t, ns)
	if len(before) == 0 {
		t.Fatal("the audit log recorded no writes for the first apply; the counter is blind")
	}
	res, err := e.Apply(ctx, renderFiles(t, files), ApplyOptions{Namespace: ns, Name: "web", Prune: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed() {
		t.Fatalf("second apply reported changes: %v", actions(res))
	}
	time.Sleep(time.Second) // the audit log is written after the response
	var ours []string
	for _, w := range cluster.Writes(t, ns)[len(before):] {
		if w.User.Username == "keyless-local-admin" {
			ours = append(ours, w.Verb+" "+w.RequestURI)
		}
	}
	if len(ours) > 0 {
		t.Fatalf("no-op apply made %d writes:\n%s", len(ours), strings.Join(ours, "\n"))
	}
}

func TestGuardsWriteNothing(t *testing.T) {
	ctx := t.Context()
	e := newEngine(t)
	ns := newNamespace(t)
	cs := clientset(t)

	t.Run("cross-namespace and cluster-scoped objects", func(t *testing.T) {
		objs := renderFiles(t, map[string]string{
			"ok.yaml":    configMap("fine", "1"),
			"other.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: sneaky\n  namespace: kube-system\n",
			"cr.yaml":    "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: everything\nrules:\n- apiGroups: ['*']\n  resources: ['*']\n  verbs: ['*']\n",
		})
		_, err := e.Apply(ctx, objs, ApplyOptions{Namespace: ns, Name: "guarded"})
		if !errors.Is(err, ErrRefused) {
			t.Fatalf("got %v, want ErrRefused", err)
		}
		for _, want := range []string{"ConfigMap/sneaky", "kube-system", "ClusterRole/everything", "cluster-scoped"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error does not mention %q: %v", want, err)
			}
		}
		if _, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "fine", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("valid object of a refused set was applied: %v", err)
		}
		if _, err := cs.RbacV1().ClusterRoles().Get(ctx, "everything", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("ClusterRole was created: %v", err)
		}
	})

	t.Run("empty render prunes nothing", func(t *testing.T) {
		if _, err := e.Apply(ctx, renderFiles(t, map[string]string{"a.yaml": configMap("a", "1")}), ApplyOptions{Namespace: ns, Name: "empty", Prune: true}); err != nil {
			t.Fatal(err)
		}
		_, err := e.Apply(ctx, renderFiles(t, map[string]string{"README.md": "nothing here"}), ApplyOptions{Namespace: ns, Name: "empty", Prune: true})
		if !errors.Is(err, ErrEmpty) {
			t.Fatalf("got %v, want ErrEmpty", err)
		}
		if _, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "a", metav1.GetOptions{}); err != nil {
			t.Fatalf("empty render pruned: %v", err)
		}
		// Allowed explicitly, it prunes.
		res, err := e.Apply(ctx, nil, ApplyOptions{Namespace: ns, Name: "empty", Prune: true, AllowEmpty: true})
		if err != nil {
			t.Fatal(err)
		}
		if actions(res)["ConfigMap/a"] != ActionPruned {
			t.Fatalf("allow-empty: %v", actions(res))
		}
	})

	t.Run("one invalid object in five applies nothing", func(t *testing.T) {
		files := map[string]string{
			"1.yaml": configMap("one", "1"),
			"2.yaml": configMap("two", "2"),
			"3.yaml": service("three"),
			"4.yaml": deployment("four", "registry.example.com/four:1", ""),
			"5.yaml": "apiVersion: v1\nkind: Service\nmetadata:\n  name: broken\nspec:\n  ports:\n  - port: 99999\n",
		}
		_, err := e.Apply(ctx, renderFiles(t, files), ApplyOptions{Namespace: ns, Name: "invalid"})
		if err == nil || !strings.Contains(err.Error(), "Service/"+ns+"/broken") {
			t.Fatalf("got %v, want an error naming Service/%s/broken", err, ns)
		}
		for _, name := range []string{"one", "two"} {
			if _, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("ConfigMap/%s applied although the set was invalid: %v", name, err)
			}
		}
		if _, err := cs.CoreV1().Services(ns).Get(ctx, "three", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("Service/three applied although the set was invalid: %v", err)
		}
		if _, err := cs.AppsV1().Deployments(ns).Get(ctx, "four", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("Deployment/four applied although the set was invalid: %v", err)
		}
		if _, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, InventoryConfigMapPrefix+"invalid", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("inventory written for a failed apply: %v", err)
		}
	})
}

// TestSharedObjectRefused: an object another inventory deployed is not taken
// over silently: apply and diff refuse it, name the owner and write nothing;
// removing the label hands it over.
func TestSharedObjectRefused(t *testing.T) {
	ctx := t.Context()
	e := newEngine(t)
	ns := newNamespace(t)
	cs := clientset(t)
	shared := map[string]string{"cm.yaml": configMap("shared", "from-one")}
	if _, err := e.Apply(ctx, renderFiles(t, shared), ApplyOptions{Namespace: ns, Name: "one"}); err != nil {
		t.Fatal(err)
	}
	two := map[string]string{"cm.yaml": configMap("shared", "from-two"), "own.yaml": configMap("own", "x")}
	for name, run := range map[string]func() error{
		"apply": func() error {
			_, err := e.Apply(ctx, renderFiles(t, two), ApplyOptions{Namespace: ns, Name: "two"})
			return err
		},
		"diff": func() error {
			_, err := e.Diff(ctx, renderFiles(t, two), DiffOptions{Namespace: ns, Name: "two"})
			return err
		},
	} {
		err := run()
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), `ConfigMap/shared: already deployed by "one"`) || !strings.Contains(err.Error(), "kubectl label configmap/shared keyless.dev/inventory-") {
			t.Fatalf("%s: %v", name, err)
		}
	}
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "shared", metav1.GetOptions{})
	if err != nil || cm.Data["value"] != "from-one" || cm.Labels[InventoryLabel] != "one" {
		t.Fatalf("the shared object changed: %v %v", cm, err)
	}
	if _, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "own", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a refused apply wrote another object: %v", err)
	}
	// Handing it over: drop the label, then the other inventory may take it.
	delete(cm.Labels, InventoryLabel)
	if _, err := cs.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Apply(ctx, renderFiles(t, two), ApplyOptions{Namespace: ns, Name: "two"}); err != nil {
		t.Fatalf("after hand-over: %v", err)
	}
}

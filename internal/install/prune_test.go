package install

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"

	"github.com/keyless-cd/keyless/config"
	"github.com/keyless-cd/keyless/internal/engine"
	"github.com/keyless-cd/keyless/internal/localcluster"
	"github.com/keyless-cd/keyless/internal/localcluster/clustertest"
	"github.com/keyless-cd/keyless/internal/render"
)

// TestShrinkingNamespacesIsRefusedOrPruned: a namespace list that leaves out
// namespaces the installed controller manages is refused before any write,
// naming them; a growing list is applied; with PruneNamespaces the dropped
// namespaces lose what install created there (Roles, RoleBindings, the
// deployer's ServiceAccount, the inventory) and keep everything else.
func TestShrinkingNamespacesIsRefusedOrPruned(t *testing.T) {
	ctx := t.Context()
	c := clustertest.Start(t, localcluster.Options{})
	cs := kubernetes.NewForConfigOrDie(c.Config)
	opts := func(prune bool, ns ...string) Options {
		return Options{ControllerNamespace: "cd", Namespaces: ns, WithDeployment: true, PruneNamespaces: prune}
	}
	managed := func() []string {
		got, err := ManagedNamespaces(ctx, cs, "cd")
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if err := Apply(ctx, c.Config, opts(false, "team-a", "team-b")); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().ConfigMaps("team-a").Create(ctx, testConfigMap("team-a", "workload"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	err := Apply(ctx, c.Config, opts(false, "team-c"))
	var drops *DropsNamespacesError
	if !errors.Is(err, ErrDropsNamespaces) || !errors.As(err, &drops) || !slices.Equal(drops.Dropped, []string{"team-a", "team-b"}) ||
		!strings.Contains(err.Error(), "team-a, team-b") || !strings.Contains(err.Error(), "--prune-namespaces") {
		t.Fatalf("a shrinking list: %v", err)
	}
	if _, err := cs.CoreV1().Namespaces().Get(ctx, "team-c", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the refused install created namespace team-c: %v", err)
	}
	if got := managed(); !slices.Equal(got, []string{"team-a", "team-b"}) {
		t.Fatalf("the refused install changed --namespaces to %v", got)
	}

	t.Log("a growing list is applied")
	if err := Apply(ctx, c.Config, opts(false, "team-a", "team-b", "team-c")); err != nil {
		t.Fatal(err)
	}
	if got := managed(); !slices.Equal(got, []string{"team-a", "team-b", "team-c"}) {
		t.Fatalf("--namespaces %v", got)
	}

	t.Log("--prune-namespaces drops team-a and team-b and removes keyless's objects from them")
	var out bytes.Buffer
	o := opts(true, "team-c")
	o.Out = &out
	if err := Apply(ctx, c.Config, o); err != nil {
		t.Fatal(err)
	}
	if got := managed(); !slices.Equal(got, []string{"team-c"}) {
		t.Fatalf("--namespaces %v", got)
	}
	for _, ns := range []string{"team-a", "team-b"} {
		for _, name := range []string{"keyless-controller", "keyless-deployer"} {
			if _, err := cs.RbacV1().Roles(ns).Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("%s: Role %s is left: %v", ns, name, err)
			}
			if _, err := cs.RbacV1().RoleBindings(ns).Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("%s: RoleBinding %s is left: %v", ns, name, err)
			}
		}
		if _, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, "keyless-deployer", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("%s: the deployer ServiceAccount is left: %v", ns, err)
		}
		if _, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, engine.InventoryConfigMapPrefix+installManager, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("%s: install's inventory is left: %v", ns, err)
		}
		if _, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
			t.Errorf("namespace %s was deleted: %v", ns, err)
		}
		if !strings.Contains(out.String(), "pruned Role/"+ns+"/keyless-deployer") {
			t.Errorf("not reported: %s's Role\n%s", ns, out.String())
		}
	}
	if _, err := cs.CoreV1().ConfigMaps("team-a").Get(ctx, "workload", metav1.GetOptions{}); err != nil {
		t.Errorf("a team's own object was pruned: %v", err)
	}
	if _, err := cs.RbacV1().RoleBindings("team-c").Get(ctx, "keyless-controller", metav1.GetOptions{}); err != nil {
		t.Errorf("team-c: %v", err)
	}
}

// TestNoSecretInTheManifests: re-applying a folder of the install by hand
// (kubectl apply -k config/install/controller, the documented upgrade) or
// the kustomize base must never reset the webhook Secret: none holds one.
func TestNoSecretInTheManifests(t *testing.T) {
	root, err := extract()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(root) })
	err = fs.WalkDir(config.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Base(p) != "kustomization.yaml" {
			return err
		}
		res, err := render.Render(t.Context(), render.Options{Root: root, Path: path.Dir(p)})
		if err != nil {
			return err
		}
		for _, o := range res.Objects {
			if o.GetKind() == "Secret" {
				t.Errorf("%s holds Secret %s: re-applying it resets the live one", path.Dir(p), o.GetName())
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testConfigMap(ns, name string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
}

// TestReapplyingTheControllerFolderKeepsTheSecret: the by-hand upgrade
// (kubectl apply -k config/install/controller, server-side here) after an
// install leaves the webhook Secret install created as it was.
func TestReapplyingTheControllerFolderKeepsTheSecret(t *testing.T) {
	ctx := t.Context()
	c := clustertest.Start(t, localcluster.Options{})
	cs := kubernetes.NewForConfigOrDie(c.Config)
	if err := Apply(ctx, c.Config, Options{Namespaces: []string{"team-a"}, WithDeployment: true}); err != nil {
		t.Fatal(err)
	}
	secret := func() string {
		s, err := cs.CoreV1().Secrets(DefaultControllerNamespace).Get(ctx, WebhookSecretName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return string(s.Data[WebhookSecretKey])
	}
	before := secret()
	root, err := extract()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(root) })
	res, err := render.Render(ctx, render.Options{Root: root, Path: "install/controller"})
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(cs.Discovery()))
	dyn := dynamic.NewForConfigOrDie(c.Config)
	for _, o := range res.Objects {
		gvk := o.GroupVersionKind()
		mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatal(err)
		}
		ri := dyn.Resource(mapping.Resource).Namespace(o.GetNamespace())
		if _, err := ri.Apply(ctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: "kubectl", Force: true}); err != nil {
			t.Fatalf("re-applying %s %s: %v", gvk.Kind, o.GetName(), err)
		}
	}
	if after := secret(); after != before {
		t.Fatal("re-applying config/install/controller changed the webhook Secret")
	}
}

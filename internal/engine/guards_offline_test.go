package engine

import (
	"errors"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyless-cd/keyless/internal/render"
)

// refusedFiles is one render holding every kind of refused object beside
// objects that pass: a ClusterRole, a CRD and a custom resource of the
// cluster-scoped kind it defines, a ConfigMap naming another namespace, a
// pod running as the deployer, a binding to someone not allowed.
var refusedFiles = map[string]string{
	"fine.yaml":   configMap("fine", "1") + "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: also-fine\n  namespace: team\n",
	"own-ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n",
	"cr.yaml":     "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: everything\nrules: []\n",
	"crd.yaml": `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Cluster
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
---
apiVersion: example.com/v1
kind: Widget
metadata:
  name: global
---
apiVersion: example.com/v1
kind: Gadget
metadata:
  name: unknown-scope
`,
	"other.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: sneaky\n  namespace: kube-system\n",
	"deploy.yaml": deployment("web", "nginx", "") + "      serviceAccountName: keyless-deployer\n",
	"rbac.yaml": "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: readers}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}\n" +
		"subjects:\n- {kind: User, name: mallory}\n- {kind: User, name: alice}\n- {kind: ServiceAccount, name: app}\n",
}

func renderResult(t *testing.T, files map[string]string) *render.Result {
	t.Helper()
	root := t.TempDir()
	writeFiles(t, root, files)
	res, err := render.Render(t.Context(), render.Options{Root: root, Path: "."})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestCheckListsEveryRefusal: without a cluster, Check names every object
// apply's guards refuse — not only the first, and whichever guard — each
// with its source, and nothing else.
func TestCheckListsEveryRefusal(t *testing.T) {
	res := renderResult(t, refusedFiles)
	before := make([]string, len(res.Objects))
	for i, o := range res.Objects {
		before[i] = o.GetNamespace()
	}
	got, err := Check(res.Objects, CheckOptions{Namespace: "team", Source: res.Source,
		AllowedSubjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, Name: "alice"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		object, source string
		guard          Guard
		reason         string
	}{
		{"ClusterRole/everything", "cr.yaml:1", GuardNamespace, "cluster-scoped objects are not allowed"},
		{"CustomResourceDefinition/widgets.example.com", "crd.yaml:1", GuardNamespace, "cluster-scoped"},
		{"Widget/global", "crd.yaml:15", GuardNamespace, "cluster-scoped"},
		{"Deployment/web", "deploy.yaml:1", GuardIdentity, `spec.template.spec.serviceAccountName is "keyless-deployer"`},
		{"ConfigMap/sneaky", "other.yaml:1", GuardNamespace, `names namespace "kube-system"`},
		{"RoleBinding/readers", "rbac.yaml:1", GuardRBAC, `subjects[0] User "mallory" is not in the Application's spec.rbac.allowedSubjects`},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d refusals, want %d:\n%s", len(got), len(want), refusalLines(got))
	}
	for i, w := range want {
		g := got[i]
		if g.Object.String() != w.object || g.Source != w.source || g.Guard != w.guard || !strings.Contains(g.Reason, w.reason) {
			t.Errorf("refusal %d = %s [%s] (%s), want %s [%s] (%s) with %q", i, g, g.Guard, g.Source, w.object, w.guard, w.source, w.reason)
		}
	}
	for i, o := range res.Objects {
		if o.GetNamespace() != before[i] {
			t.Errorf("Check changed %s's namespace to %q", RefOf(o), o.GetNamespace())
		}
	}

	t.Run("trusting RBAC, as keyless apply does", func(t *testing.T) {
		got, _ := Check(res.Objects, CheckOptions{Namespace: "team", TrustRBAC: true})
		for _, r := range got {
			if r.Guard == GuardRBAC {
				t.Errorf("RBAC guard ran: %s", r)
			}
		}
		if len(got) != len(want)-1 {
			t.Errorf("got %d refusals, want %d", len(got), len(want)-1)
		}
	})
	t.Run("no namespace", func(t *testing.T) {
		if _, err := Check(res.Objects, CheckOptions{}); !errors.Is(err, ErrNoNamespace) {
			t.Errorf("err = %v, want ErrNoNamespace", err)
		}
	})
}

func refusalLines(rs []Refusal) string {
	var b strings.Builder
	for _, r := range rs {
		b.WriteString(r.String() + " [" + string(r.Guard) + "] (" + r.Source + ")\n")
	}
	return b.String()
}

// TestCheckSaysWhatApplySays: Check and apply run the same checks, so the
// lines of apply's refusal are Check's, guard by guard.
func TestCheckSaysWhatApplySays(t *testing.T) {
	e := newEngine(t)
	ns := newNamespace(t)
	for name, files := range map[string]map[string]string{
		"namespace": {"a.yaml": refusedFiles["cr.yaml"], "b.yaml": refusedFiles["other.yaml"], "c.yaml": refusedFiles["fine.yaml"]},
		"identity":  {"a.yaml": refusedFiles["deploy.yaml"], "b.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: tok}\ntype: kubernetes.io/service-account-token\n"},
		"rbac":      {"a.yaml": refusedFiles["rbac.yaml"], "b.yaml": role("binder", "- {apiGroups: ['*'], resources: ['*'], verbs: ['*']}\n")},
	} {
		t.Run(name, func(t *testing.T) {
			objs := renderFiles(t, files)
			for _, o := range objs {
				if o.GetNamespace() == "team" {
					o.SetNamespace(ns)
				}
			}
			refusals, err := Check(objs, CheckOptions{Namespace: ns})
			if err != nil {
				t.Fatal(err)
			}
			_, applyErr := e.Apply(t.Context(), objs, ApplyOptions{Namespace: ns, Name: "agree"})
			if !errors.Is(applyErr, ErrRefused) {
				t.Fatalf("apply: %v, want ErrRefused", applyErr)
			}
			lines := strings.Split(applyErr.Error(), "\n  ")[1:]
			var checked []string
			for _, r := range refusals {
				checked = append(checked, r.String())
			}
			slices.Sort(lines)
			slices.Sort(checked)
			if !slices.Equal(lines, checked) {
				t.Errorf("apply refused:\n  %s\nCheck found:\n  %s", strings.Join(lines, "\n  "), strings.Join(checked, "\n  "))
			}
		})
	}
}

// TestBuiltinClusterScopedKinds: the kinds Check knows as cluster-scoped
// without a cluster are exactly those a real API server serves outside
// namespaces (custom resources aside).
func TestBuiltinClusterScopedKinds(t *testing.T) {
	dc, err := discovery.NewDiscoveryClientForConfig(cluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cluster.Config, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	crds := &apiextensionsv1.CustomResourceDefinitionList{}
	if err := c.List(t.Context(), crds); err != nil {
		t.Fatal(err)
	}
	custom := map[string]bool{}
	for _, crd := range crds.Items {
		custom[crd.Spec.Group] = true
	}
	lists, err := dc.ServerPreferredResources()
	if err != nil {
		t.Fatal(err)
	}
	served := map[schema.GroupKind]bool{}
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			t.Fatal(err)
		}
		if custom[gv.Group] {
			continue
		}
		for _, r := range l.APIResources {
			gk := schema.GroupKind{Group: gv.Group, Kind: r.Kind}
			if strings.Contains(r.Name, "/") {
				continue
			}
			served[gk] = true
			if !r.Namespaced && !IsBuiltinClusterScoped(gk) {
				t.Errorf("%s is cluster-scoped, IsBuiltinClusterScoped says not", gk)
			}
			if r.Namespaced && IsBuiltinClusterScoped(gk) {
				t.Errorf("%s is namespaced, IsBuiltinClusterScoped says cluster-scoped", gk)
			}
		}
	}
	for gk := range builtinClusterScoped {
		if !served[gk] {
			t.Logf("%s is not served by this API server (a newer or alpha kind)", gk)
		}
	}
}

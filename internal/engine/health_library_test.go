package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/keyless-cd/keyless/internal/celhealth"
)

// libraryFixtures are internal/celhealth's fixtures of the built-in
// library: objects as their operators write them, one file per state.
const libraryFixtures = "../celhealth/testdata/library"

// TestLibraryOnTheControlPlane: every fixture of the built-in health
// library, created on the local control plane under a CRD of its group and
// kind (installed here as the cluster admin would), its status written
// through the status subresource as its operator does, is judged by the
// engine's Status with the library as the fixture's name says (Current,
// InProgress, Failed) — where kstatus alone would call most of them
// Current.
func TestLibraryOnTheControlPlane(t *testing.T) {
	lib, err := celhealth.DefaultChecker()
	if err != nil {
		t.Fatal(err)
	}
	dirs, err := os.ReadDir(libraryFixtures)
	if err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t)
	eng := newEngine(t)
	dyn := dynamic.NewForConfigOrDie(cluster.Config)
	crds := apiextensionsclient.NewForConfigOrDie(cluster.Config)
	want := map[string]status.Status{"current": status.CurrentStatus, "inprogress": status.InProgressStatus, "failed": status.FailedStatus}
	checked := 0
	for _, d := range dirs {
		if !d.IsDir() || d.Name() == "crossplane" { // Crossplane's entry is added per XRD group, not built in
			continue
		}
		files, _ := filepath.Glob(filepath.Join(libraryFixtures, d.Name(), "*.yaml"))
		for i, f := range files {
			state := strings.SplitN(strings.TrimSuffix(filepath.Base(f), ".yaml"), "-", 2)[0]
			fx := readFixture(t, f)
			gvr := installCRDFor(t, crds, fx)
			obj := fx.DeepCopy()
			unstructured.RemoveNestedField(obj.Object, "status")
			if obj.GetNamespace() != "" {
				obj.SetNamespace(ns)
			}
			obj.SetName(d.Name()[:min(len(d.Name()), 30)] + "-" + string(rune('a'+i)))
			obj.SetResourceVersion("")
			obj.SetUID("")
			obj.SetCreationTimestamp(metav1.Time{})
			obj.SetGeneration(0)
			obj.SetFinalizers(nil)      // no operator here to remove them
			obj.SetOwnerReferences(nil) // their owners do not exist: the garbage collector would delete it
			obj.SetManagedFields(nil)
			res := dyn.Resource(gvr).Namespace(obj.GetNamespace())
			live, err := res.Create(t.Context(), obj, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("%s: creating: %v", f, err)
			}
			// Bring the generation to the fixture's (each spec change adds
			// one), so its observedGeneration means what it says.
			for n := 0; live.GetGeneration() < fx.GetGeneration(); n++ {
				_ = unstructured.SetNestedField(live.Object, int64(n), "spec", "keylessTestBump")
				if live, err = res.Update(t.Context(), live, metav1.UpdateOptions{}); err != nil {
					t.Fatalf("%s: bumping the generation: %v", f, err)
				}
			}
			if st, ok := fx.Object["status"]; ok {
				live.Object["status"] = st
				if live, err = res.UpdateStatus(t.Context(), live, metav1.UpdateOptions{}); err != nil {
					t.Fatalf("%s: writing the status: %v", f, err)
				}
			}
			got, err := eng.Status(t.Context(), []ObjectRef{RefOf(live)}, lib)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if got[0].Status != want[state].String() {
				t.Errorf("%s: %s, want %s", f, got[0], want[state])
			}
			checked++
		}
	}
	if checked < 45 {
		t.Fatalf("only %d fixtures checked", checked)
	}
}

func readFixture(t *testing.T, path string) *unstructured.Unstructured {
	t.Helper()
	y, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	j, err := yaml.YAMLToJSON(y)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	o := &unstructured.Unstructured{}
	if err := o.UnmarshalJSON(j); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return o
}

// installCRDFor installs (once) a CRD serving o's group, version and kind,
// namespaced when o has a namespace, with a status subresource and no
// schema beyond preserving fields; it waits until it is Established.
func installCRDFor(t *testing.T, crds apiextensionsclient.Interface, o *unstructured.Unstructured) schema.GroupVersionResource {
	t.Helper()
	gvk := o.GroupVersionKind()
	plural := strings.ToLower(gvk.Kind) + "s"
	gvr := gvk.GroupVersion().WithResource(plural)
	name := plural + "." + gvk.Group
	scope := apiextensionsv1.NamespaceScoped
	if o.GetNamespace() == "" {
		scope = apiextensionsv1.ClusterScoped
	}
	preserve := true
	crd := &apiextensionsv1.CustomResourceDefinition{
		// The annotation the API server asks of *.k8s.io groups (Gateway API's own CRDs carry it).
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{"api-approved.kubernetes.io": "https://github.com/kubernetes-sigs/gateway-api/pull/1538"}},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{Group: gvk.Group, Scope: scope,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Kind: gvk.Kind, ListKind: gvk.Kind + "List", Plural: plural, Singular: strings.ToLower(gvk.Kind)},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: gvk.Version, Served: true, Storage: true,
				Subresources: &apiextensionsv1.CustomResourceSubresources{Status: &apiextensionsv1.CustomResourceSubresourceStatus{}},
				Schema:       &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{Type: "object", XPreserveUnknownFields: &preserve}}}}},
	}
	if _, err := crds.ApiextensionsV1().CustomResourceDefinitions().Create(t.Context(), crd, metav1.CreateOptions{}); err != nil {
		if !strings.Contains(err.Error(), "already exists") {
			t.Fatalf("installing %s: %v", name, err)
		}
		return gvr
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := crds.ApiextensionsV1().CustomResourceDefinitions().Get(t.Context(), name, metav1.GetOptions{})
		if err == nil {
			for _, c := range got.Status.Conditions {
				if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
					return gvr
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("CRD %s not Established: %v", name, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

package ui

import (
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/celhealth"
)

func TestAnnotationsAreBoundedAndSkipLastApplied(t *testing.T) {
	all := map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{}", "long": strings.Repeat("x", 500)}
	for i := range 30 {
		all[fmt.Sprintf("k%02d", i)] = "v"
	}
	got := annotationsOf(all)
	if len(got) != maxAnnotations+1 || got[maxAnnotations].Value != "11 more" {
		t.Fatalf("got %d annotations, last %+v", len(got), got[len(got)-1])
	}
	for _, a := range got {
		if strings.HasPrefix(a.Key, "kubectl.kubernetes.io/") {
			t.Error("kubectl's last-applied copy is shown")
		}
	}
	if v := annotationsOf(map[string]string{"long": strings.Repeat("é", 500)})[0].Value; len([]rune(v)) != maxAnnotationValue+1 || !strings.HasSuffix(v, "…") {
		t.Errorf("a long value is not cut at %d characters: %d", maxAnnotationValue, len([]rune(v)))
	}
}

// TestTreeShowsCELVerdict: the object tree judges an object as the
// controller does: the Application's spec.healthCheckExprs over the
// defaults (keyless ui --health-check-exprs over the built-in library),
// then kstatus; a Failed verdict carries the condition that says so.
func TestTreeShowsCELVerdict(t *testing.T) {
	lib, err := celhealth.DefaultChecker()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{opts: Options{Health: lib}, health: map[types.NamespacedName]appHealth{}}
	obj := func(y string) *unstructured.Unstructured {
		// Decoded as from the API server (integers stay int64).
		j, err := yaml.YAMLToJSON([]byte(y))
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(j); err != nil {
			t.Fatal(err)
		}
		return u
	}
	// As cert-manager writes a Certificate whose request failed.
	failedCert := obj(`apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: web-tls, namespace: shop, generation: 1}
status:
  conditions:
  - {type: Ready, status: "False", reason: DoesNotExist, message: Issuing certificate as Secret does not exist, observedGeneration: 1}
  - {type: Issuing, status: "False", reason: Failed, message: "The certificate request has failed to complete and will be retried", observedGeneration: 1}
`)
	widget := obj(`apiVersion: example.com/v1
kind: Widget
metadata: {name: w, namespace: shop}
status: {phase: Broken, conditions: [{type: Ready, status: "True"}]}
`)
	app := &kv1.Application{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: "u1", Generation: 1}}

	judge := func(app *kv1.Application, o *unstructured.Unstructured) *objectNode {
		t.Helper()
		h, err := s.healthOf(app)
		if err != nil {
			t.Fatalf("healthOf: %v", err)
		}
		n := &objectNode{}
		describe(n, o, h)
		return n
	}
	if n := judge(app, failedCert); n.Status != "Failed" || !strings.Contains(n.Message, "Issuing Failed: The certificate request has failed") {
		t.Errorf("library: Certificate = %s %q, want Failed with the Issuing condition", n.Status, n.Message)
	}
	if n := judge(app, widget); n.Status != "Current" {
		t.Errorf("no entry: Widget = %s %q, want kstatus's Current", n.Status, n.Message)
	}

	// The Application's own entries win.
	app.Spec.HealthCheckExprs = []kv1.HealthCheckExpr{
		{APIVersion: "example.com/v1", Kind: "Widget", Failed: "status.?phase.orValue('') == 'Broken'", Current: "status.?phase.orValue('') == 'Running'"},
		{APIVersion: "cert-manager.io/v1", Kind: "Certificate", Current: "true"},
	}
	app.Generation = 2
	if n := judge(app, widget); n.Status != "Failed" {
		t.Errorf("spec.healthCheckExprs: Widget = %s %q, want Failed", n.Status, n.Message)
	}
	if n := judge(app, failedCert); n.Status != "Current" {
		t.Errorf("spec.healthCheckExprs: Certificate = %s %q, want Current (the Application's entry over the library)", n.Status, n.Message)
	}

	// An entry that does not compile is named; the defaults judge.
	app.Spec.HealthCheckExprs[0].Current = "status.phase ="
	app.Generation = 3
	h, err := s.healthOf(app)
	if err == nil || !strings.Contains(err.Error(), "spec.healthCheckExprs") || !strings.Contains(err.Error(), "healthCheckExprs[0] (example.com/v1 Widget).current") {
		t.Fatalf("a broken entry: %v", err)
	}
	n := &objectNode{}
	describe(n, failedCert, h)
	if n.Status != "Failed" {
		t.Errorf("a broken entry: Certificate = %s, want the library's Failed", n.Status)
	}
}

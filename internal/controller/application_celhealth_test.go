package controller_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/celhealth"
)

// certificateHealth is a controller-wide entry for cert-manager's
// Certificate: Ready True is Current, issuance Failed is Failed.
var certificateHealth = celhealth.Expressions{
	APIVersion: "cert-manager.io/v1", Kind: "Certificate",
	Current: "status.?conditions.orValue([]).exists(e, e.type == 'Ready' && e.status == 'True')",
	Failed:  "status.?conditions.orValue([]).exists(e, e.type == 'Issuing' && e.status == 'False' && e.reason == 'Failed')",
}

const certificateYAML = `apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: web-tls%s
spec:
  secretName: web-tls
  dnsNames: [web.example.com]
  issuerRef: {name: letsencrypt, kind: ClusterIssuer}
`

// TestCELHealth: the controller judges a custom resource with CEL health
// (here cert-manager's Certificate, whose status the test writes as
// cert-manager does) instead of kstatus's guess: Progressing while it
// issues, Degraded naming it and its message when issuance failed, a
// later wave never started behind it (and not after --hook-timeout); an
// Application's own expression overrides the controller-wide one; an
// expression that fails on the object, or does not compile, is reported
// naming it.
func TestCELHealth(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.healthExprs = []celhealth.Expressions{certificateHealth}
	e.hookTimeout = 3 * time.Minute
	e.installCertificateCRD()
	e.startController(5 * time.Second)

	e.push(map[string]string{"certs/cert.yaml": strings.Replace(certificateYAML, "%s", "", 1)}, nil, "a certificate")
	time.Sleep(1100 * time.Millisecond)
	e.createApp("certs", "certs", 5*time.Second)

	a := e.waitApp("certs", "applied and Progressing (kstatus alone would call it Current)", time.Minute, func(a *kv1.Application) bool {
		return a.Status.LastAppliedRevision != "" && a.Status.Health.Status == kv1.HealthProgressing
	})
	if !strings.Contains(a.Status.Health.Message, "Certificate/web-tls") {
		t.Fatalf("health message %q does not name the Certificate", a.Status.Health.Message)
	}

	e.setCertificateStatus("web-tls", []any{
		map[string]any{"type": "Ready", "status": "False", "reason": "DoesNotExist", "message": "Issuing certificate as Secret does not exist", "lastTransitionTime": "2026-12-06T10:00:00Z"},
		map[string]any{"type": "Issuing", "status": "False", "reason": "Failed", "message": "The certificate request has failed to complete and will be retried: issuer letsencrypt not found", "lastTransitionTime": "2026-12-06T10:00:00Z"},
	})
	a = e.waitApp("certs", "Degraded by the failed issuance", time.Minute, func(a *kv1.Application) bool { return a.Status.Health.Status == kv1.HealthDegraded })
	if msg := a.Status.Health.Message; !strings.Contains(msg, "Certificate/web-tls Failed") || !strings.Contains(msg, "issuer letsencrypt not found") {
		t.Fatalf("Degraded message %q does not name the Certificate and what it says", msg)
	}

	t.Run("a later wave does not start behind a failed Certificate", func(t *testing.T) {
		start := time.Now()
		rev := e.push(map[string]string{
			"certs/cert.yaml":  strings.Replace(certificateYAML, "%s", "\n  annotations: {argocd.argoproj.io/sync-wave: \"0\"}", 1),
			"certs/after.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: after\n  annotations: {argocd.argoproj.io/sync-wave: \"1\"}\ndata: {k: v}\n",
		}, nil, "a wave after the certificate")
		a := e.waitApp("certs", "the sync of "+rev+" failing on wave 0", time.Minute, func(a *kv1.Application) bool {
			return len(a.Status.History) > 0 && a.Status.History[0].Revision == rev && a.Status.History[0].Result == kv1.SyncResultFailed
		})
		if err := e.admin.Get(ctx, client.ObjectKey{Namespace: appNS, Name: "after"}, &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
			t.Fatalf("wave 1 was applied behind the failed Certificate (err %v)", err)
		}
		if msg := a.Status.History[0].Error; !strings.Contains(msg, "Certificate/web-tls") || !strings.Contains(msg, "issuer letsencrypt not found") {
			t.Fatalf("the failed sync says %q, not the Certificate and its message", msg)
		}
		if took := time.Since(start); took > 2*time.Minute {
			t.Fatalf("the failure took %s: it waited for the hook timeout", took)
		}
	})

	t.Run("an Application's expression overrides the controller-wide one", func(t *testing.T) {
		e.setHealthExprs("certs", []kv1.HealthCheckExpr{{APIVersion: "cert-manager.io/v1", Kind: "Certificate", Current: "true"}})
		e.waitApp("certs", "Ready with the Application's own expression", time.Minute, func(a *kv1.Application) bool {
			return ready(a) && a.Status.Health.Status == kv1.HealthHealthy
		})
		if err := e.admin.Get(ctx, client.ObjectKey{Namespace: appNS, Name: "after"}, &corev1.ConfigMap{}); err != nil {
			t.Fatalf("wave 1 after a Current Certificate: %v", err)
		}
	})

	t.Run("an expression that fails on the object is reported naming it", func(t *testing.T) {
		expr := "status.conditions[7].status == 'True'"
		e.setHealthExprs("certs", []kv1.HealthCheckExpr{{APIVersion: "cert-manager.io/v1", Kind: "Certificate", Current: expr}})
		a := e.waitApp("certs", "the expression's error reported", time.Minute, func(a *kv1.Application) bool {
			return a.Status.ObservedGeneration == a.Generation && strings.Contains(a.Status.Health.Message+conditionMessage(a), expr)
		})
		if got := a.Status.Health.Message + conditionMessage(a); !strings.Contains(got, "Certificate/"+appNS+"/web-tls") {
			t.Fatalf("the error %q does not name the object", got)
		}
	})

	t.Run("an expression past its cost limit is reported naming it", func(t *testing.T) {
		names := make([]string, 120)
		for i := range names {
			names[i] = fmt.Sprintf("h%d.example.com", i)
		}
		e.push(map[string]string{"certs/cert.yaml": strings.Replace(strings.Replace(certificateYAML, "%s", "", 1), "[web.example.com]", "["+strings.Join(names, ", ")+"]", 1)},
			[]string{"certs/after.yaml"}, "a certificate for 120 names")
		expr := "spec.dnsNames.all(a, spec.dnsNames.all(b, spec.dnsNames.all(c, a + b + c != '')))"
		e.setHealthExprs("certs", []kv1.HealthCheckExpr{{APIVersion: "cert-manager.io/v1", Kind: "Certificate", Current: expr}})
		a := e.waitApp("certs", "the cost limit reported", time.Minute, func(a *kv1.Application) bool {
			return strings.Contains(a.Status.Health.Message+conditionMessage(a), "cost limit")
		})
		if got := a.Status.Health.Message + conditionMessage(a); !strings.Contains(got, expr) || !strings.Contains(got, "web-tls") {
			t.Fatalf("the cost error %q does not name the expression and the object", got)
		}
	})

	t.Run("an expression that does not compile is an invalid spec naming it", func(t *testing.T) {
		e.setHealthExprs("certs", []kv1.HealthCheckExpr{{APIVersion: "cert-manager.io/v1", Kind: "Certificate", Current: "status.("}})
		e.waitApp("certs", "InvalidSpec naming the entry", time.Minute, func(a *kv1.Application) bool {
			return a.Status.ObservedGeneration == a.Generation && readyReason(a) == "InvalidSpec" && strings.HasPrefix(conditionMessage(a), "spec.healthCheckExprs") && strings.Contains(conditionMessage(a), "healthCheckExprs[0] (cert-manager.io/v1 Certificate).current")
		})
	})
}

// installCertificateCRD is the cluster admin's part: cert-manager's
// Certificate kind (its status a subresource, as cert-manager's CRD has
// it) and the deployer's right to manage Certificates in appNS.
func (e *env) installCertificateCRD() {
	e.t.Helper()
	ctx := e.t.Context()
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "certificates.cert-manager.io"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "cert-manager.io", Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Kind: "Certificate", ListKind: "CertificateList", Plural: "certificates", Singular: "certificate"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Storage: true,
				Subresources: &apiextensionsv1.CustomResourceSubresources{Status: &apiextensionsv1.CustomResourceSubresourceStatus{}},
				Schema:       &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{Type: "object", XPreserveUnknownFields: ptrTo(true)}}}},
		},
	}
	if err := e.admin.Create(ctx, crd); err != nil {
		e.t.Fatal(err)
	}
	waitForOr(e.t, 30*time.Second, "the Certificate CRD Established", func() (bool, string) {
		got := &apiextensionsv1.CustomResourceDefinition{}
		if err := e.admin.Get(ctx, client.ObjectKey{Name: crd.Name}, got); err != nil {
			return false, err.Error()
		}
		return crdEstablished(got), ""
	}, func() string { return "" })
	for _, o := range []client.Object{
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "certificates", Namespace: appNS}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"cert-manager.io"}, Resources: []string{"certificates"}, Verbs: []string{"get", "list", "watch", "create", "patch", "update", "delete"}},
		}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "certificates", Namespace: appNS},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "certificates"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: kv1.DefaultServiceAccountName, Namespace: appNS}}},
	} {
		if err := e.admin.Create(ctx, o); err != nil {
			e.t.Fatal(err)
		}
	}
}

// setCertificateStatus writes a Certificate's status conditions, as
// cert-manager does.
func (e *env) setCertificateStatus(name string, conditions []any) {
	e.t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(schema.GroupVersionKind{Group: "cert-manager.io", Version: "v1", Kind: "Certificate"})
	if err := e.admin.Get(e.t.Context(), client.ObjectKey{Namespace: appNS, Name: name}, u); err != nil {
		e.t.Fatal(err)
	}
	if err := unstructured.SetNestedSlice(u.Object, conditions, "status", "conditions"); err != nil {
		e.t.Fatal(err)
	}
	if err := e.admin.Status().Update(e.t.Context(), u); err != nil {
		e.t.Fatal(err)
	}
}

// setHealthExprs sets the Application's spec.healthCheckExprs.
func (e *env) setHealthExprs(name string, exprs []kv1.HealthCheckExpr) {
	e.t.Helper()
	app := &kv1.Application{}
	if err := e.admin.Get(e.t.Context(), client.ObjectKey{Namespace: appNS, Name: name}, app); err != nil {
		e.t.Fatal(err)
	}
	patch := client.MergeFrom(app.DeepCopy())
	app.Spec.HealthCheckExprs = exprs
	if err := e.admin.Patch(e.t.Context(), app, patch); err != nil {
		e.t.Fatal(err)
	}
}

func conditionMessage(a *kv1.Application) string {
	for _, c := range a.Status.Conditions {
		if c.Type == kv1.ReadyCondition {
			return c.Message
		}
	}
	return ""
}

func ptrTo[T any](v T) *T { return &v }

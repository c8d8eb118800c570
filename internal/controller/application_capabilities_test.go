package controller_test

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

// capsChart reports what its render saw of .Capabilities, as monitoring
// charts decide whether to emit a ServiceMonitor.
var capsChart = map[string]string{
	"caps/Chart.yaml": "apiVersion: v2\nname: caps\nversion: 0.1.0\n",
	"caps/templates/cm.yaml": `apiVersion: v1
kind: ConfigMap
metadata: {name: caps}
data:
  kube: {{ .Capabilities.KubeVersion.Version | quote }}
  monitoring: {{ .Capabilities.APIVersions.Has "monitoring.coreos.com/v1/ServiceMonitor" | quote }}
`,
}

const serviceMonitorCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: servicemonitors.monitoring.coreos.com}
spec:
  group: monitoring.coreos.com
  names: {kind: ServiceMonitor, listKind: ServiceMonitorList, plural: servicemonitors, singular: servicemonitor}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
`

// TestChartsSeeTheClustersCapabilities: the controller renders Helm with
// the cluster's version and API versions, as Argo CD does: a chart that
// emits a ServiceMonitor only where its API exists sees the CRD once the
// cluster serves it, and a version the Application names wins.
func TestChartsSeeTheClustersCapabilities(t *testing.T) {
	e, _ := seedApp(t, 5*time.Second)
	ctx := t.Context()
	rev := e.push(capsChart, nil, "caps chart")
	e.waitApp("web", "at the caps commit", 30*time.Second, func(a *kv1.Application) bool { return a.Status.LastAppliedRevision == rev })
	app := &kv1.Application{}
	app.Name, app.Namespace = "caps", appNS
	app.Spec.Source = kv1.ApplicationSource{RepoURL: e.git.RepoURL(repoName), Path: "caps", SecretRef: &kv1.LocalObjectReference{Name: "myapp-git"}}
	app.Spec.SyncPolicy = &kv1.SyncPolicy{Automated: &kv1.AutomatedSyncPolicy{SelfHeal: true}}
	app.Spec.Interval = &metav1.Duration{Duration: kv1.MinInterval}
	if err := e.admin.Create(ctx, app); err != nil {
		t.Fatal(err)
	}
	server, err := e.cs.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	e.waitCaps("the cluster's version, no monitoring API", server.GitVersion, "false")

	crd := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(serviceMonitorCRD), &crd.Object); err != nil {
		t.Fatal(err)
	}
	if err := e.admin.Create(ctx, crd); err != nil {
		t.Fatal(err)
	}
	// The CRD changes the render, not the commit: a periodic pass sees it.
	e.waitCaps("the CRD now served", server.GitVersion, "true")

	if err := e.admin.Get(ctx, types.NamespacedName{Namespace: appNS, Name: "caps"}, app); err != nil {
		t.Fatal(err)
	}
	// A merge patch: an update would conflict with the controller's status writes.
	patch := client.MergeFrom(app.DeepCopy())
	app.Spec.Source.Helm = &kv1.HelmSource{KubeVersion: "v1.30.1"}
	if err := e.admin.Patch(ctx, app, patch); err != nil {
		t.Fatal(err)
	}
	e.waitCaps("the Application's kubeVersion", "v1.30.1", "true")
}

// waitCaps waits until the caps chart's ConfigMap reports kube and monitoring.
func (e *env) waitCaps(what, kube, monitoring string) {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last map[string]string
	for time.Now().Before(deadline) {
		cm := &corev1.ConfigMap{}
		if err := e.admin.Get(e.t.Context(), types.NamespacedName{Namespace: appNS, Name: "caps"}, cm); err == nil {
			last = cm.Data
			if cm.Data["kube"] == kube && cm.Data["monitoring"] == monitoring {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	e.t.Fatalf("%s: ConfigMap caps holds %v, want kube %s and monitoring %s\nevents: %s", what, last, kube, monitoring, strings.Join(e.eventTexts(), "\n"))
}

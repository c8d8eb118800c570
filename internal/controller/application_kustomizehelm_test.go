package controller_test

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestKustomizeHelmChartsArePulled: a kustomization whose helmCharts entry
// names a chart in a Helm repository that is not vendored renders with it,
// as `kustomize build --enable-helm` pulls it: the controller fetches it
// (the render child stays offline), and the kustomization's transformers
// apply to the chart's objects.
func TestKustomizeHelmChartsArePulled(t *testing.T) {
	e, _ := seedApp(t, time.Hour)
	repoURL := helmRepository(t, "1.0.0", "1.1.0").URL
	e.push(map[string]string{
		"pulled/kustomization.yaml": "namespace: " + appNS + "\nlabels:\n- pairs: {team: platform}\nhelmCharts:\n- name: lib\n  repo: " + repoURL +
			"\n  version: 1.0.0\n  releaseName: x\n  valuesInline: {greeting: from kustomize}\n  valuesMerge: replace\n", // replace: the chart has no values.yaml to merge into
	}, nil, "kustomization with a chart from a repository")
	time.Sleep(1100 * time.Millisecond) // past the ls-remote a second old the seed's sync made (gitsource.Options.LsRemoteTTL)
	e.createApp("pulled", "pulled", time.Hour)
	e.waitApp("pulled", "Ready", 60*time.Second, ready)
	cm := &corev1.ConfigMap{}
	if err := e.admin.Get(t.Context(), types.NamespacedName{Namespace: appNS, Name: "x-lib"}, cm); err != nil {
		t.Fatalf("the pulled chart's object: %v", err)
	}
	if cm.Labels["team"] != "platform" {
		t.Errorf("ConfigMap labels = %v, want the kustomization's team: platform", cm.Labels)
	}
	if cm.Data["version"] != "1.0.0" || cm.Data["greeting"] != "from kustomize" {
		t.Errorf("ConfigMap data = %v, want version 1.0.0 with the kustomization's valuesInline", cm.Data)
	}
}

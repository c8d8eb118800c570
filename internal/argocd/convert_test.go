package argocd

import (
	"os"
	"slices"
	"strings"
	"testing"
)

func TestConvertSeedExample(t *testing.T) {
	data, err := os.ReadFile("testdata/seed.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Convert(data)
	if err != nil {
		t.Fatal(err)
	}
	app := res.Application
	if app.Name != "myapp" || app.Namespace != "myapp" {
		t.Errorf("name/namespace = %s/%s, want myapp/myapp (destination.namespace)", app.Namespace, app.Name)
	}
	s := app.Spec.Source
	if s.RepoURL != "https://gitlab.example.com/myorg/myapp" || s.TargetRevision != "main" || s.Path != "helm-charts/myapp" {
		t.Errorf("source = %+v", s)
	}
	a := app.Spec.SyncPolicy.Automated
	if !a.Prune || !a.SelfHeal || a.AllowEmpty {
		t.Errorf("automated = %+v", a)
	}
	if app.Spec.Destination != nil {
		t.Errorf("destination should be implied by the namespace: %+v", app.Spec.Destination)
	}
	if len(res.Warnings) != 0 {
		t.Errorf("the seed example converts without loss, got warnings %v", res.Warnings)
	}
	if app.APIVersion != "keyless.dev/v1alpha1" || app.Kind != "Application" {
		t.Errorf("type = %s %s", app.APIVersion, app.Kind)
	}
}

func TestConvertWarnsAboutUnsupportedFields(t *testing.T) {
	in := `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: shop, namespace: argocd, finalizers: [resources-finalizer.argocd.argoproj.io]}
spec:
  project: payments
  source:
    repoURL: git@gitlab.example.com:org/shop.git
    path: chart
    helm:
      valueFiles: [../values/prod.yaml]
      releaseName: shop
      parameters: [{name: image.tag, value: abc}]
      values: "replicas: 2"
  destination: {name: in-cluster, namespace: shop}
  ignoreDifferences: [{group: apps, kind: Deployment, jsonPointers: [/spec/replicas]}]
  syncPolicy:
    automated: {prune: true}
    syncOptions: [CreateNamespace=true, ServerSideApply=true, Replace=true, PrunePropagationPolicy=orphan]
`
	res, err := Convert([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	h := res.Application.Spec.Source.Helm
	if h == nil || h.ReleaseName != "shop" || len(h.ValueFiles) != 1 || len(h.Parameters) != 1 || h.Parameters[0].Name != "image.tag" {
		t.Fatalf("helm = %+v", h)
	}
	joined := strings.Join(res.Warnings, "\n")
	for _, want := range []string{"spec.project", "finalizers", "spec.ignoreDifferences", "spec.source.helm.values", "CreateNamespace", "PrunePropagationPolicy=orphan"} {
		if !strings.Contains(joined, want) {
			t.Errorf("no warning about %s:\n%s", want, joined)
		}
	}
	if strings.Contains(joined, "ServerSideApply=true is not") || strings.Contains(joined, "Replace=true is not") {
		t.Errorf("ServerSideApply and Replace are honoured; no warning expected:\n%s", joined)
	}
	if got := res.Application.Spec.SyncPolicy.SyncOptions; !slices.Equal(got, []string{"ServerSideApply=true", "Replace=true"}) {
		t.Errorf("kept syncOptions = %v, want the honoured ServerSideApply=true and Replace=true", got)
	}
}

func TestConvertErrors(t *testing.T) {
	for name, in := range map[string]string{
		"other cluster":  "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: a}\nspec: {source: {repoURL: https://x/y}, destination: {server: https://prod.example.com, namespace: a}}\n",
		"no namespace":   "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: a}\nspec: {source: {repoURL: https://x/y}, destination: {}}\n",
		"multi-source":   "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: a}\nspec: {sources: [], destination: {namespace: a}}\n",
		"not argo":       "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
		"helm repo":      "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: a}\nspec: {source: {repoURL: https://charts.example.com, chart: nginx}, destination: {namespace: a}}\n",
		"invalid yaml":   "apiVersion: [\n",
		"no repo":        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: a}\nspec: {destination: {namespace: a}}\n",
		"empty document": "",
	} {
		if _, err := Convert([]byte(in)); err == nil {
			t.Errorf("%s: converted without error", name)
		}
	}
}

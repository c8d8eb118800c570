package argocd

import (
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

const argoHead = "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: web, namespace: argocd}\nspec:\n  project: default\n  destination: {server: 'https://kubernetes.default.svc', namespace: web}\n"

// TestConvertChartsAndSources: charts from Helm repositories and OCI
// registries (Argo CD's forms) and the multi-source form with a $values
// ref are carried over.
func TestConvertChartsAndSources(t *testing.T) {
	for _, tc := range []struct {
		name, spec string
		source     kv1.ApplicationSource
		sources    []kv1.ApplicationSource
		warnings   []string
	}{
		{"inline values (values and valuesObject)", "  source:\n    chart: web\n    repoURL: https://charts.example.com\n    helm:\n      values: |\n        replicaCount: 2\n      valuesObject: {ingress: {hosts: [a.example.com]}}\n",
			kv1.ApplicationSource{RepoURL: "https://charts.example.com", Chart: "web", Helm: &kv1.HelmSource{Values: "replicaCount: 2\n",
				ValuesObject: &runtime.RawExtension{Raw: []byte(`{"ingress":{"hosts":["a.example.com"]}}`)}}}, nil, nil},
		{"chart from an HTTPS repository with a range", `  source:
    chart: sealed-secrets
    repoURL: https://bitnami-labs.github.io/sealed-secrets
    targetRevision: ">=2.16.0 <3.0.0"
    helm:
      releaseName: sealed-secrets
`, kv1.ApplicationSource{RepoURL: "https://bitnami-labs.github.io/sealed-secrets", Chart: "sealed-secrets", TargetRevision: ">=2.16.0 <3.0.0",
			Helm: &kv1.HelmSource{ReleaseName: "sealed-secrets"}}, nil, []string{"outOfNamespace: approve"}},
		{"OCI chart in Argo CD's form", `  source:
    chart: nginx
    repoURL: registry-1.docker.io/bitnamicharts
    targetRevision: 15.9.0
`, kv1.ApplicationSource{RepoURL: "oci://registry-1.docker.io/bitnamicharts", Chart: "nginx", TargetRevision: "15.9.0"}, nil,
			[]string{`spec.source.repoURL "registry-1.docker.io/bitnamicharts" is Argo CD's form of an OCI Helm repository`, "must be an OCI registry"}},
		{"OCI chart named with its path", "  source: {chart: bitnamicharts/nginx, repoURL: registry-1.docker.io, targetRevision: 15.x}\n",
			kv1.ApplicationSource{RepoURL: "oci://registry-1.docker.io/bitnamicharts", Chart: "nginx", TargetRevision: "15.x"}, nil,
			[]string{"must be an OCI registry"}},
		{"OCI chart with oci://", "  source: {chart: podinfo, repoURL: oci://ghcr.io/stefanprodan/charts, targetRevision: 6.9.2}\n",
			kv1.ApplicationSource{RepoURL: "oci://ghcr.io/stefanprodan/charts", Chart: "podinfo", TargetRevision: "6.9.2"}, nil, nil},
		{"Argo CD's OCI artifact source", "  source: {path: ., repoURL: oci://registry-1.docker.io/bitnamicharts/nginx, targetRevision: 15.9.0}\n",
			kv1.ApplicationSource{RepoURL: "oci://registry-1.docker.io/bitnamicharts", Chart: "nginx", TargetRevision: "15.9.0"}, nil,
			[]string{"Argo CD's OCI artifact source", "refuses any other artifact"}},
		{"multi-source chart with a $values Git ref", `  sources:
  - repoURL: 'https://prometheus-community.github.io/helm-charts'
    chart: prometheus
    targetRevision: 15.7.1
    helm:
      valueFiles:
      - $values/charts/prometheus/values.yaml
  - repoURL: 'https://git.example.com/org/value-files.git'
    targetRevision: dev
    ref: values
`, kv1.ApplicationSource{}, []kv1.ApplicationSource{
			{RepoURL: "https://prometheus-community.github.io/helm-charts", Chart: "prometheus", TargetRevision: "15.7.1",
				Helm: &kv1.HelmSource{ValueFiles: []string{"$values/charts/prometheus/values.yaml"}}},
			{RepoURL: "https://git.example.com/org/value-files.git", TargetRevision: "dev", Ref: "values"},
		}, nil},
		{"one source in spec.sources becomes spec.source", "  sources: [{repoURL: https://git.example.com/web.git, path: deploy, targetRevision: main}]\n",
			kv1.ApplicationSource{RepoURL: "https://git.example.com/web.git", Path: "deploy", TargetRevision: "main"}, nil, nil},
		{"helm options", `  source:
    chart: web
    repoURL: https://charts.example.com
    helm:
      kubeVersion: 1.33.0
      apiVersions: [monitoring.coreos.com/v1]
      parameters: [{name: image.tag, value: v1.2.3, forceString: true}]
      skipTests: true
      namespace: web
      version: v3
      passCredentials: true
      skipCrds: true
      ignoreMissingValueFiles: true
      skipSchemaValidation: true
`, kv1.ApplicationSource{RepoURL: "https://charts.example.com", Chart: "web", Helm: &kv1.HelmSource{
			KubeVersion: "1.33.0", APIVersions: []string{"monitoring.coreos.com/v1"}, Parameters: []kv1.HelmParameter{{Name: "image.tag", Value: "v1.2.3"}}}}, nil,
			[]string{"helm.version", "helm.passCredentials", "helm.skipCrds", "helm.ignoreMissingValueFiles", "helm.skipSchemaValidation"}},
		{"helm.namespace other than the destination", "  source: {chart: web, repoURL: https://charts.example.com, helm: {namespace: other, skipTests: false}}\n",
			kv1.ApplicationSource{RepoURL: "https://charts.example.com", Chart: "web"}, nil,
			[]string{`spec.source.helm.namespace "other" dropped`, "spec.source.helm.skipTests: false dropped"}},
		{"what a ref source cannot use is named", `  sources:
  - {repoURL: https://charts.example.com, chart: web, helm: {valueFiles: [$values/web.yaml]}}
  - {repoURL: https://git.example.com/values.git, ref: values, kustomize: {namePrefix: x-}}
`, kv1.ApplicationSource{}, []kv1.ApplicationSource{
			{RepoURL: "https://charts.example.com", Chart: "web", Helm: &kv1.HelmSource{ValueFiles: []string{"$values/web.yaml"}}},
			{RepoURL: "https://git.example.com/values.git", Ref: "values"},
		}, []string{"spec.sources[1].kustomize.namePrefix is not supported"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Convert([]byte(argoHead + tc.spec))
			if err != nil {
				t.Fatal(err)
			}
			spec := res.Application.Spec
			if !reflect.DeepEqual(spec.Source, tc.source) {
				t.Errorf("source = %+v\nwant     %+v", spec.Source, tc.source)
			}
			if !reflect.DeepEqual(spec.Sources, tc.sources) {
				t.Errorf("sources = %+v\nwant      %+v", spec.Sources, tc.sources)
			}
			if len(spec.Sources) > 0 {
				if err := spec.UseRenderedSource(); err != nil {
					t.Errorf("keyless refuses the converted sources: %v", err)
				}
			}
			joined := strings.Join(res.Warnings, "\n")
			for _, w := range tc.warnings {
				if !strings.Contains(joined, w) {
					t.Errorf("warnings lack %q:\n%s", w, joined)
				}
			}
			if len(tc.warnings) == 0 && len(res.Warnings) > 0 {
				t.Errorf("unexpected warnings:\n%s", joined)
			}
		})
	}
}

// TestConvertRefusesSources: what keyless cannot render as Argo CD does is
// refused, saying why and what to do.
func TestConvertRefusesSources(t *testing.T) {
	for _, tc := range []struct{ name, spec, want string }{
		{"two rendered sources", `  sources:
    - repoURL: https://github.com/mycompany/billing-app.git
      path: manifests
      targetRevision: 8.5.1
    - repoURL: https://github.com/mycompany/common-settings.git
      path: configmaps-billing
      targetRevision: HEAD
`, "spec.sources[0] and spec.sources[1] are both rendered"},
		{"a ref source with a path", `  sources:
  - repoURL: https://github.com/argoproj/argocd-example-apps.git
    path: helm-guestbook
    helm: {valueFiles: [$values/guestbook/values.yaml]}
  - repoURL: https://git.example.com/org/values.git
    path: manifests
    ref: values
`, "spec.sources[1] has ref \"values\" and a path, so Argo CD renders it too; keyless renders one source and reads ref sources for values only: split it into two Applications"},
		{"a ref source with a chart", "  sources: [{repoURL: https://git.example.com/a.git, path: a}, {repoURL: https://charts.example.com, chart: b, ref: b}]\n", "and a chart"},
		{"a ref source with helm settings", "  sources: [{repoURL: https://git.example.com/a.git, path: a}, {repoURL: https://git.example.com/v.git, ref: v, helm: {releaseName: x}}]\n", "helm settings"},
		{"a ref source in an OCI registry", "  sources: [{repoURL: https://git.example.com/a.git, path: a}, {repoURL: oci://ghcr.io/org/values, ref: v}]\n", "a ref source is a Git repository"},
		{"every source has a ref", "  sources: [{repoURL: https://git.example.com/a.git, ref: a}]\n", "none is rendered"},
		{"no source", "  sources: []\n", "spec.sources is empty"},
		{"a $ref no source has", "  sources: [{repoURL: https://charts.example.com, chart: web, helm: {valueFiles: [$vals/web.yaml]}}, {repoURL: https://git.example.com/v.git, ref: values}]\n",
			`spec.sources[0].helm.valueFiles[0] "$vals/web.yaml" reads $vals, but no spec.sources entry has ref: vals`},
		{"a $ref in a single source", "  source: {repoURL: https://git.example.com/a.git, path: chart, helm: {valueFiles: [$values/a.yaml]}}\n", "no spec.sources entry has ref: values"},
		{"helm.values not YAML", "  source:\n    chart: web\n    repoURL: https://charts.example.com\n    helm:\n      values: |\n        replicaCount: [2\n",
			"spec.source.helm.values"},
		{"helm.fileParameters", "  source: {repoURL: https://git.example.com/a.git, path: chart, helm: {fileParameters: [{name: config, path: files/config.json}]}}\n", "helm --set-file"},
		{"forceString keyless would type", "  source: {repoURL: https://git.example.com/a.git, path: chart, helm: {parameters: [{name: tag, value: \"1234\", forceString: true}]}}\n",
			`spec.source.helm.parameters[0] (tag) has forceString: true`},
		{"a chart with a path", "  source: {chart: web, repoURL: https://charts.example.com, path: charts/web}\n", `spec.source.path "charts/web" with chart "web"`},
		{"a chart from Git", "  source: {chart: web, repoURL: git@github.com:org/charts.git}\n", "a chart comes from a Helm repository (https://) or an OCI registry (oci://)"},
		{"a chart with directory options", "  source: {chart: web, repoURL: https://charts.example.com, directory: {recurse: true}}\n", "spec.source.directory configures a plain folder"},
		{"a path inside an OCI artifact", "  source: {path: manifests, repoURL: oci://ghcr.io/org/bundle, targetRevision: 1.0.0}\n", "keyless reads OCI artifacts only as Helm charts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Convert([]byte(argoHead + tc.spec))
			if err == nil {
				t.Fatalf("converted: %+v", res.Application.Spec)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q\nlacks   %q", err, tc.want)
			}
		})
	}
}

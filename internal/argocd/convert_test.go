package argocd

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
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
      ignoreMissingValueFiles: true
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
	for _, want := range []string{"spec.project", "finalizers", "spec.ignoreDifferences", "spec.source.helm.ignoreMissingValueFiles", "CreateNamespace", "PrunePropagationPolicy=orphan"} {
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

// TestConvertChartWithCRDs: a chart that holds CRDs (cert-manager, or one
// the Application marks with skipCrds or SkipDryRunOnMissingResource)
// gets a note on what spec.syncPolicy.outOfNamespace: approve does; a
// plain chart does not.
func TestConvertChartWithCRDs(t *testing.T) {
	for name, tc := range map[string]struct {
		in   string
		note bool
	}{
		"cert-manager":                {"apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: cm}\nspec:\n  destination: {namespace: cert-manager}\n  source: {repoURL: https://charts.jetstack.io, chart: cert-manager, targetRevision: v1.16.2, helm: {valuesObject: {crds: {enabled: true}}}}\n", true},
		"skipCrds":                    {"apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: a}\nspec:\n  destination: {namespace: a}\n  source: {repoURL: https://charts.example.com, chart: op, helm: {skipCrds: true}}\n", true},
		"SkipDryRunOnMissingResource": {"apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: a}\nspec:\n  destination: {namespace: a}\n  source: {repoURL: https://charts.example.com, chart: op}\n  syncPolicy: {syncOptions: [SkipDryRunOnMissingResource=true]}\n", true},
		"plain chart":                 {"apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: a}\nspec:\n  destination: {namespace: a}\n  source: {repoURL: https://charts.example.com, chart: web}\n", false},
	} {
		res, err := Convert([]byte(tc.in))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := strings.Contains(strings.Join(res.Warnings, "\n"), "outOfNamespace: approve")
		if got != tc.note {
			t.Errorf("%s: note about outOfNamespace: approve = %v, want %v (warnings %q)", name, got, tc.note, res.Warnings)
		}
	}
}

func TestConvertErrors(t *testing.T) {
	for name, in := range map[string]string{
		"other cluster":  "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: a}\nspec: {source: {repoURL: https://x/y}, destination: {server: https://prod.example.com, namespace: a}}\n",
		"no namespace":   "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: a}\nspec: {source: {repoURL: https://x/y}, destination: {}}\n",
		"multi-source":   "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: a}\nspec: {sources: [], destination: {namespace: a}}\n",
		"not argo":       "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
		"invalid yaml":   "apiVersion: [\n",
		"no repo":        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: a}\nspec: {destination: {namespace: a}}\n",
		"empty document": "",
	} {
		if _, err := Convert([]byte(in)); err == nil {
			t.Errorf("%s: converted without error", name)
		}
	}
}

// TestConvertDirectory: spec.source.directory is carried over as it is.
func TestConvertDirectory(t *testing.T) {
	const head = "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: a}\nspec:\n  destination: {namespace: a}\n  source:\n    repoURL: https://git.example.com/a.git\n    path: deploy\n"
	for _, tc := range []struct {
		name, directory string
		want            *kv1.DirectorySource
		warnings        []string
	}{
		{"none", "", nil, nil},
		{"recurse", "    directory: {recurse: true}\n", &kv1.DirectorySource{Recurse: true}, nil},
		{"recurse false kept", "    directory: {recurse: false}\n", &kv1.DirectorySource{}, nil},
		{"include and exclude", "    directory: {include: '{a.yaml,b.yaml}', exclude: '*.json'}\n",
			&kv1.DirectorySource{Include: "{a.yaml,b.yaml}", Exclude: "*.json"}, nil},
		{"jsonnet", `    directory:
      recurse: true
      jsonnet:
        extVars: [{name: env, value: prod}, {name: num, value: "1+1", code: true}]
        tlas: [{name: cluster, value: east}]
        libs: [vendor, lib/k]
`, &kv1.DirectorySource{Recurse: true, Jsonnet: &kv1.JsonnetSource{
			ExtVars: []kv1.JsonnetVar{{Name: "env", Value: "prod"}, {Name: "num", Value: "1+1", Code: true}},
			TLAs:    []kv1.JsonnetVar{{Name: "cluster", Value: "east"}},
			Libs:    []string{"vendor", "lib/k"},
		}}, nil},
		{"argo cd build variables warned", "    directory:\n      jsonnet:\n        tlas: [{name: app, value: $ARGOCD_APP_NAME}, {value: x}]\n",
			&kv1.DirectorySource{Jsonnet: &kv1.JsonnetSource{TLAs: []kv1.JsonnetVar{{Name: "app", Value: "$ARGOCD_APP_NAME"}}}},
			[]string{"tlas[0] (app): Argo CD expands", "tlas[1] has no name"}},
		{"disableExtensionFilter dropped with a warning", "    directory: {exclude: x.yaml, disableExtensionFilter: true}\n",
			&kv1.DirectorySource{Exclude: "x.yaml"}, []string{"spec.source.directory.disableExtensionFilter is not supported"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Convert([]byte(head + tc.directory))
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Application.Spec.Source.Directory; !reflect.DeepEqual(got, tc.want) {
				t.Errorf("directory = %+v, want %+v", got, tc.want)
			}
			if len(res.Warnings) != len(tc.warnings) {
				t.Errorf("warnings = %q, want %d", res.Warnings, len(tc.warnings))
			}
			joined := strings.Join(res.Warnings, "\n")
			for _, w := range tc.warnings {
				if !strings.Contains(joined, w) {
					t.Errorf("warnings %q lack %q", res.Warnings, w)
				}
			}
		})
	}
}

package install

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// repoRoot is the repository's root, from this package's folder.
const repoRoot = "../.."

// referenceCLI returns the reference helm or kustomize: env (make test sets
// it), else bin/tools/<name> (make reftools builds it).
func referenceCLI(t *testing.T, env, name string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	p, err := filepath.Abs(filepath.Join(repoRoot, "bin/tools", name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("no %s CLI: run make reftools (it builds bin/tools/%s) or set %s", name, name, env)
	}
	return p
}

// TestChartAndBaseAreUpToDate: charts/keyless and config/kustomize are what
// make chart generates from the install's objects now, file for file.
func TestChartAndBaseAreUpToDate(t *testing.T) {
	ex, err := os.ReadFile(filepath.Join(repoRoot, KustomizeDir, "example/controller/kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tag := regexp.MustCompile(`(?m)^  newTag: (\S+)$`).FindSubmatch(ex)
	if tag == nil {
		t.Fatal("config/kustomize/example/controller/kustomization.yaml: no newTag")
	}
	chart, err := GenerateChart(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	base, err := GenerateKustomize(t.Context(), string(tag[1]))
	if err != nil {
		t.Fatal(err)
	}
	alerts, err := os.ReadFile(filepath.Join(repoRoot, AlertsFile))
	if err != nil {
		t.Fatal(err)
	}
	rule, err := GeneratePrometheusRule(alerts)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(repoRoot, PrometheusRuleFile)); !bytes.Equal(got, rule) {
		t.Errorf("%s is not %s as a PrometheusRule: run make chart", PrometheusRuleFile, AlertsFile)
	}
	for dir, want := range map[string]map[string][]byte{ChartDir: chart, KustomizeDir: base} {
		got := map[string][]byte{}
		err := filepath.WalkDir(filepath.Join(repoRoot, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(filepath.Join(repoRoot, dir), p)
			got[filepath.ToSlash(rel)], err = os.ReadFile(p)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range sortedPaths(want) {
			if !bytes.Equal(got[p], want[p]) {
				t.Errorf("%s/%s is not what make chart generates: run make chart", dir, p)
			}
		}
		for _, p := range sortedPaths(got) {
			if _, ok := want[p]; !ok {
				t.Errorf("%s/%s is not generated: run make chart", dir, p)
			}
		}
	}
}

// TestChartRendersTheExport: helm template of charts/keyless gives the
// objects keyless install --export prints with the same settings, object for
// object, field for field.
func TestChartRendersTheExport(t *testing.T) {
	helm := referenceCLI(t, "KEYLESS_HELM", "helm")
	digest := "sha256:" + strings.Repeat("ab", 32)
	resources := map[string]any{"requests": map[string]any{"cpu": "100m", "memory": "256Mi", "ephemeral-storage": "1Gi"}, "limits": map[string]any{"memory": "2Gi"}}
	for name, tc := range map[string]struct {
		args []string
		opts Options
		// withoutNamespaces: the chart creates no Namespace (createNamespaces false).
		withoutNamespaces bool
	}{
		"defaults": {
			args: []string{"--set", "namespaces={team-a,team-b}"},
			opts: Options{Namespaces: []string{"team-a", "team-b"}, Image: ImageRepository + ":v" + ChartPlaceholderVersion},
		},
		"every value": {
			args: []string{"--set", "namespaces={team-a,team-b,team-c}", "--set", "image.repository=registry.example.com/keyless", "--set", "image.digest=" + digest,
				"--set", "replicas=3", "--set-json", "resources=" + mustJSON(t, resources), "--set", "podSecurity=baseline",
				"--set", "createReleaseNamespace=true", "--set", "credentialMountPolicy=true", "--set", "monitoring=true"},
			opts: Options{Namespaces: []string{"team-a", "team-b", "team-c"}, Image: "registry.example.com/keyless@" + digest, Replicas: 3,
				Resources: resources, PodSecurity: PodSecurityBaseline, CredentialMountPolicy: true, Monitoring: true},
		},
		"namespaces created elsewhere": {
			args:              []string{"--set", "namespaces={team-a}", "--set", "image.tag=v1.2.3", "--set", "createNamespaces=false"},
			opts:              Options{Namespaces: []string{"team-a"}, Image: ImageRepository + ":v1.2.3"},
			withoutNamespaces: true,
		},
	} {
		t.Run(name, func(t *testing.T) {
			args := append([]string{"template", "keyless", filepath.Join(repoRoot, ChartDir), "--namespace", DefaultControllerNamespace}, tc.args...)
			out, err := exec.CommandContext(t.Context(), helm, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			opts := tc.opts
			opts.WithDeployment, opts.Version, opts.Instance = true, "v"+ChartPlaceholderVersion, "keyless"
			m, err := Render(t.Context(), opts)
			if err != nil {
				t.Fatal(err)
			}
			want := m.All(opts.Namespaces)
			want = dropKinds(want, func(o *unstructured.Unstructured) bool {
				isNS := o.GetKind() == "Namespace"
				return isNS && (tc.withoutNamespaces || o.GetName() == DefaultControllerNamespace && !strings.Contains(strings.Join(tc.args, " "), "createReleaseNamespace=true"))
			})
			sameObjects(t, "helm template", decodeDocs(t, out), "keyless install --export", want)
		})
	}
	args := []string{"template", "keyless", filepath.Join(repoRoot, ChartDir)}
	if out, err := exec.CommandContext(t.Context(), helm, args...).CombinedOutput(); err == nil || !strings.Contains(string(out), "namespaces is required") {
		t.Errorf("helm template without namespaces: %v\n%s", err, out)
	}
	args = append(args, "--set", "namespaces={a}", "--set", "podSecurity=none")
	if out, err := exec.CommandContext(t.Context(), helm, args...).CombinedOutput(); err == nil || !strings.Contains(string(out), `podSecurity "none"`) {
		t.Errorf("helm template with podSecurity none: %v\n%s", err, out)
	}
}

// TestKustomizeBaseRendersTheExport: kustomize build of the example overlay
// of config/kustomize gives the objects keyless install --export prints for
// the same namespaces and image.
func TestKustomizeBaseRendersTheExport(t *testing.T) {
	kustomize := referenceCLI(t, "KEYLESS_KUSTOMIZE", "kustomize")
	dir := filepath.Join(repoRoot, KustomizeDir, "example")
	out, err := exec.CommandContext(t.Context(), kustomize, "build", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("kustomize build %s: %v\n%s", dir, err, out)
	}
	ex, err := os.ReadFile(filepath.Join(dir, "controller/kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tag := string(regexp.MustCompile(`(?m)^  newTag: (\S+)$`).FindSubmatch(ex)[1])
	m, err := Render(t.Context(), Options{Namespaces: kustomizeExampleNamespaces, WithDeployment: true, Image: ImageRepository + ":" + tag, Version: tag})
	if err != nil {
		t.Fatal(err)
	}
	sameObjects(t, "kustomize build", decodeDocs(t, out), "keyless install --export", m.All(kustomizeExampleNamespaces))
	for _, o := range decodeDocs(t, out) {
		if strings.HasSuffix(o.GetNamespace(), kustomizeManagedPlaceholder) || o.GetName() == kustomizeManagedPlaceholder {
			t.Errorf("%s %s: the base's placeholder namespace is left", o.GetKind(), o.GetName())
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func dropKinds(objs []*unstructured.Unstructured, drop func(*unstructured.Unstructured) bool) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if !drop(o) {
			out = append(out, o)
		}
	}
	return out
}

// decodeDocs decodes a YAML stream into objects, skipping empty documents.
func decodeDocs(t *testing.T, stream []byte) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(stream), -1) {
		o := map[string]any{}
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatalf("%v\n%s", err, doc)
		}
		if len(o) > 0 {
			out = append(out, &unstructured.Unstructured{Object: o})
		}
	}
	return out
}

// sameObjects compares two sets of objects by kind, namespace and name,
// each through JSON (numbers alike).
func sameObjects(t *testing.T, gotName string, got []*unstructured.Unstructured, wantName string, want []*unstructured.Unstructured) {
	t.Helper()
	index := func(objs []*unstructured.Unstructured) map[string]string {
		out := map[string]string{}
		for _, o := range objs {
			b, err := json.Marshal(o.Object)
			if err != nil {
				t.Fatal(err)
			}
			var v any
			_ = json.Unmarshal(b, &v)
			y, _ := yaml.Marshal(v)
			out[o.GetKind()+" "+o.GetNamespace()+"/"+o.GetName()] = string(y)
		}
		return out
	}
	g, w := index(got), index(want)
	for k, wy := range w {
		gy, ok := g[k]
		switch {
		case !ok:
			t.Errorf("%s: %s has no %s", k, gotName, k)
		case gy != wy:
			t.Errorf("%s differs:\n%s:\n%s\n%s:\n%s", k, gotName, gy, wantName, wy)
		}
	}
	for k := range g {
		if _, ok := w[k]; !ok {
			t.Errorf("%s: %s has %s, %s has not", k, gotName, k, wantName)
		}
	}
}

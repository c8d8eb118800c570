package render_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/pmezard/go-difflib/difflib"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/keyless-cd/keyless/internal/render"
	"github.com/keyless-cd/keyless/internal/version"
)

// The reference CLIs (`make test` builds bin/tools/helm,
// bin/tools/kustomize and bin/tools/jsonnet from hack/reftools/go.mod: helm
// v4.3.1, kustomize v5.8.2, go-jsonnet's jsonnet v0.22.0).
const (
	helmEnv      = "KEYLESS_HELM"
	kustomizeEnv = "KEYLESS_KUSTOMIZE"
	jsonnetEnv   = "KEYLESS_JSONNET"
)

// referenceRoot holds the vendored public charts and kustomizations; its
// README.md names each one's module@version, path and licence.
const referenceRoot = "testdata/reference"

// referenceCase is one folder rendered by keyless and by the reference CLI.
type referenceCase struct {
	// root is the checkout (relative to referenceRoot); path the folder
	// rendered inside it, as an Application's spec.source.path.
	root, path string
	// helm: rendered with `helm template`; jsonnet (not nil): a plain
	// folder of *.jsonnet files rendered with these options (keyless:
	// Options.Directory.Jsonnet), each file evaluated by `jsonnet`; else
	// with `kustomize build`.
	helm    bool
	jsonnet *render.JsonnetOptions
	// release and namespace are the Helm release's (and the namespace
	// keyless is given for a kustomization or a Jsonnet folder).
	release, namespace string
	// valueFiles are relative to the chart folder, or $ref/path inside
	// refRoots[ref]; values are merged last (keyless: HelmOptions.Values;
	// helm: one more --values file).
	valueFiles []string
	values     map[string]any
	// refRoots are the checkouts (relative to referenceRoot) of a
	// multi-source Application's ref sources, by ref (keyless:
	// Options.RefRoots; helm: --values refRoots[ref]/path).
	refRoots map[string]string
	// apiVersions are added to .Capabilities.APIVersions on both sides
	// (HelmOptions.APIVersions; helm --api-versions), as a cluster's are.
	apiVersions []string
	// enableHelm runs kustomize with --enable-helm (helmCharts), inflating
	// with the reference helm.
	enableHelm bool
	// randomData are the objects (objectKey) whose data values a template
	// generates anew at every render (Sprig's genCA, genSignedCert,
	// randAlphaNum): two `helm template` runs differ there too, so only
	// their data keys are compared, not the values.
	randomData []string
	// randomNames are name prefixes of objects whose name ends in a suffix
	// a template generates anew at every render (podinfo's test pods:
	// randAlphaNum 5): the suffix is not compared.
	randomNames []string
}

// referenceCases are real public charts and kustomizations: what keyless
// renders must be what `helm template` / `kustomize build` render.
var referenceCases = map[string]referenceCase{
	// .Capabilities.APIVersions.Has "apiregistration.k8s.io/v1" gates its
	// three APIServices; Helm's default API versions (the same Helm
	// library on both sides) hold it.
	"helm prometheus-adapter (Capabilities.APIVersions.Has)": {
		root: "prometheus-community", path: "prometheus-adapter", helm: true,
		release: "adapter", namespace: "monitoring",
	},
	// values.schema.json with "$schema": "http://json-schema.org/schema#";
	// four dependencies vendored under charts/; subcharts gate VPAs on
	// .Capabilities.APIVersions.Has.
	"helm prometheus (http $schema, vendored dependencies)": {
		root: "prometheus-community", path: "prometheus", helm: true,
		release: "prometheus", namespace: "monitoring",
	},
	// Bitnami: http $schema, the common library chart vendored,
	// Capabilities-based API versions; a self-signed certificate generated
	// at each render (genCA, genSignedCert).
	"helm bitnami nginx (http $schema, vendored common)": {
		root: "bitnami", path: "nginx", helm: true,
		release: "web", namespace: "web",
		randomData: []string{"v1/Secret/web/web-nginx-tls"},
	},
	// The ServiceMonitor exists only when the cluster serves
	// monitoring.coreos.com/v1 (HelmOptions.APIVersions, --api-versions).
	"helm prometheus-redis-exporter ServiceMonitor (APIVersions)": {
		root: "prometheus-community", path: "prometheus-redis-exporter", helm: true,
		release: "redis-exporter", namespace: "monitoring",
		values:      map[string]any{"serviceMonitor": map[string]any{"enabled": true}},
		apiVersions: []string{"monitoring.coreos.com/v1"},
	},
	"helm podinfo": {
		root: "podinfo", path: "charts/podinfo", helm: true,
		release: "podinfo", namespace: "apps",
	},
	"helm podinfo with values-prod.yaml": {
		root: "podinfo", path: "charts/podinfo", helm: true,
		release: "frontend", namespace: "prod", valueFiles: []string{"values-prod.yaml"},
	},
	// Argo CD's spec.sources: the chart from one source, its values from
	// another repository's checkout ($values/envs/prod/values.yaml).
	"helm podinfo multi-source ($values from another repository)": {
		root: "podinfo", path: "charts/podinfo", helm: true,
		release: "podinfo", namespace: "prod",
		valueFiles: []string{"$values/envs/prod/values.yaml"},
		refRoots:   map[string]string{"values": "multisource-values"},
	},
	// Argo CD's guestbook Jsonnet fixture: a function of two TLAs (string
	// and code) reading two ext vars, importing from the folder and from a
	// library folder; its array output ends in a null, skipped.
	"jsonnet argo-cd guestbook (extVars, TLAs, libs)": {
		root: "argo-cd", path: "reposerver/repository/testdata/jsonnet", namespace: "default",
		jsonnet: &render.JsonnetOptions{
			ExtVars: []render.JsonnetVar{{Name: "extVarString", Value: "extVarString"}, {Name: "extVarCode", Value: `"extVarCode"`, Code: true}},
			TLAs:    []render.JsonnetVar{{Name: "tlaString", Value: "tlaString"}, {Name: "tlaCode", Value: `"tlaCode"`, Code: true}},
			Libs:    []string{"reposerver/repository/testdata/jsonnet/vendor"},
		},
	},
	// helmCharts inflated in-process (kustomize --enable-helm runs helm):
	// inline values, a release namespace, labels and a patch on the
	// inflated objects; test hooks kept, as kustomize keeps them.
	"kustomize helmCharts (local chartHome)": {
		root: "kustomize-helmcharts", path: ".", namespace: "apps", enableHelm: true,
		randomNames: []string{"frontend-podinfo-grpc-test-", "frontend-podinfo-jwt-test-", "frontend-podinfo-service-test-"},
	},
	"kustomize podinfo": {
		root: "podinfo", path: "kustomize", namespace: "apps",
	},
	// Bases, a configMapGenerator (redis.conf), a namespace and a labels
	// transformer.
	"kustomize podinfo deploy overlay (bases, configMapGenerator, transformers)": {
		root: "podinfo", path: "deploy/overlays/production", namespace: "production",
	},
	// Argo CD's own namespace install: nested bases, images.
	"kustomize argo-cd namespace-install": {
		root: "argo-cd", path: "manifests/namespace-install", namespace: "argocd",
	},
	"kustomize components (argo-cd testdata)": {
		root: "argo-cd", path: "util/kustomize/testdata/kustomization_yaml_components", namespace: "default",
	},
}

// TestReferenceRenderEquality renders each case with keyless and with the
// real CLI and compares the objects as a set keyed by
// apiVersion/kind/namespace/name, not as text. Nothing is ignored beyond
// what decoding drops: YAML comments (helm's "# Source:" lines), key order,
// document separators and the order of objects (keyless's order is checked
// elsewhere; Helm's install order is not part of `helm template`'s stream).
func TestReferenceRenderEquality(t *testing.T) {
	helm, kustomize, jsonnet := os.Getenv(helmEnv), os.Getenv(kustomizeEnv), os.Getenv(jsonnetEnv)
	if helm == "" || kustomize == "" || jsonnet == "" {
		t.Fatalf("no helm, kustomize or jsonnet CLI: run `make test` (it builds bin/tools/helm, bin/tools/kustomize and bin/tools/jsonnet) or set %s, %s and %s", helmEnv, kustomizeEnv, jsonnetEnv)
	}
	names := make([]string, 0, len(referenceCases))
	for name := range referenceCases {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		tc := referenceCases[name]
		t.Run(name, func(t *testing.T) {
			root := filepath.Join(referenceRoot, tc.root)
			opts := render.Options{
				Root: root, Path: tc.path, Namespace: tc.namespace,
				Helm: render.HelmOptions{ReleaseName: tc.release, ValueFiles: tc.valueFiles, Values: tc.values, APIVersions: tc.apiVersions},
			}
			for ref, dir := range tc.refRoots {
				if opts.RefRoots == nil {
					opts.RefRoots = map[string]string{}
				}
				opts.RefRoots[ref] = filepath.Join(referenceRoot, dir)
			}
			if tc.jsonnet != nil {
				opts.Directory.Jsonnet = *tc.jsonnet
			}
			res, err := render.Render(t.Context(), opts)
			if err != nil {
				t.Fatalf("keyless: %v", err)
			}
			var want map[string]map[string]any
			switch {
			case tc.helm:
				want, err = referenceObjects(helmTemplate(t, helm, filepath.Join(root, tc.path), tc))
			case tc.jsonnet != nil:
				want, err = jsonnetEval(t, jsonnet, root, tc.path, *tc.jsonnet)
			default:
				want, err = referenceObjects(kustomizeBuild(t, kustomize, filepath.Join(root, tc.path), tc.enableHelm, helm))
			}
			if err != nil {
				t.Fatalf("decoding the reference output: %v", err)
			}
			got := make(map[string]map[string]any, len(res.Objects))
			for _, o := range res.Objects {
				js, err := json.Marshal(o.Object)
				if err != nil {
					t.Fatal(err)
				}
				if err := addObject(got, js); err != nil {
					t.Fatalf("keyless: %v", err)
				}
			}
			got, want = withoutRandomNames(got, tc.randomNames), withoutRandomNames(want, tc.randomNames)
			for _, k := range tc.randomData {
				if want[k] == nil {
					t.Errorf("randomData: the reference rendered no %s", k)
				}
				blankData(got[k])
				blankData(want[k])
			}
			compareObjects(t, got, want)
		})
	}
}

// helmTemplate runs `helm template` as keyless renders: the same release,
// namespace and Kubernetes version (helm.go: inst.KubeVersion), CRDs
// included, test hooks skipped, no repository or plugin configuration.
func helmTemplate(t *testing.T, bin, chart string, tc referenceCase) []byte {
	t.Helper()
	args := []string{"template", tc.release, chart,
		"--namespace", tc.namespace,
		"--kube-version", version.KubernetesVersion(),
		"--include-crds", "--skip-tests"}
	for _, vf := range tc.valueFiles {
		if ref, ok := strings.CutPrefix(vf, "$"); ok {
			name, rest, _ := strings.Cut(ref, "/")
			args = append(args, "--values", filepath.Join(referenceRoot, tc.refRoots[name], rest))
			continue
		}
		args = append(args, "--values", filepath.Join(chart, vf))
	}
	if tc.values != nil {
		data, err := yaml.Marshal(tc.values)
		if err != nil {
			t.Fatal(err)
		}
		vf := filepath.Join(t.TempDir(), "values.yaml")
		if err := os.WriteFile(vf, data, 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--values", vf)
	}
	for _, v := range tc.apiVersions {
		args = append(args, "--api-versions", v)
	}
	return runReference(t, bin, args...)
}

// kustomizeBuild runs `kustomize build` with its defaults (no plugins,
// root-only loading), helmCharts inflated by the reference helm when
// enableHelm.
func kustomizeBuild(t *testing.T, bin, dir string, enableHelm bool, helm string) []byte {
	t.Helper()
	args := []string{"build", dir}
	if enableHelm {
		args = append(args, "--enable-helm", "--helm-command", helm)
	}
	return runReference(t, bin, args...)
}

// jsonnetEval runs `jsonnet` on each *.jsonnet file of the folder path
// (inside root) as Argo CD evaluates them: the folder, then the libraries
// (relative to root), as import paths, the last searched first; the ext
// vars and TLAs as strings or code. Each file's JSON output is decoded as
// Argo CD does: one object, or an array of objects (null items skipped); a
// List is unwrapped into its items.
func jsonnetEval(t *testing.T, bin, root, path string, j render.JsonnetOptions) (map[string]map[string]any, error) {
	t.Helper()
	dir := filepath.Join(root, path)
	args := []string{"-J", dir}
	for _, lib := range j.Libs {
		args = append(args, "-J", filepath.Join(root, lib))
	}
	flag := func(v render.JsonnetVar, str, code string) []string {
		if v.Code {
			return []string{code, v.Name + "=" + v.Value}
		}
		return []string{str, v.Name + "=" + v.Value}
	}
	for _, v := range j.ExtVars {
		args = append(args, flag(v, "--ext-str", "--ext-code")...)
	}
	for _, v := range j.TLAs {
		args = append(args, flag(v, "--tla-str", "--tla-code")...)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.jsonnet"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no *.jsonnet file in %s (%v)", dir, err)
	}
	out := map[string]map[string]any{}
	for _, f := range files {
		var items []json.RawMessage
		js := bytes.TrimSpace(runReference(t, bin, append(args, f)...))
		if bytes.HasPrefix(js, []byte("[")) {
			if err := json.Unmarshal(js, &items); err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
		} else {
			items = []json.RawMessage{js}
		}
		for _, item := range items {
			if err := addJsonnetItem(out, item); err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
		}
	}
	return out, nil
}

// addJsonnetItem adds one item of a Jsonnet output: nothing for null, the
// items of a List (a kind ending in List with an items array), or the
// object.
func addJsonnetItem(into map[string]map[string]any, item json.RawMessage) error {
	if bytes.Equal(bytes.TrimSpace(item), []byte("null")) {
		return nil
	}
	var list struct {
		Kind  string          `json:"kind"`
		Items json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(item, &list); err != nil {
		return err
	}
	var items []json.RawMessage
	if !strings.HasSuffix(list.Kind, "List") || json.Unmarshal(list.Items, &items) != nil {
		return addObject(into, item)
	}
	for _, it := range items {
		if err := addObject(into, it); err != nil {
			return err
		}
	}
	return nil
}

// runReference runs a reference CLI isolated from the user's configuration
// (its own HOME and XDG folders) and returns stdout.
func runReference(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	home := t.TempDir()
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"),
		"XDG_CACHE_HOME=" + filepath.Join(home, "cache"),
		"XDG_CONFIG_HOME=" + filepath.Join(home, "config"),
		"XDG_DATA_HOME=" + filepath.Join(home, "data")}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v: %s", filepath.Base(bin), strings.Join(args, " "), err, errOut.String())
	}
	return out.Bytes()
}

// referenceObjects decodes a multi-document YAML stream into objects keyed
// by objectKey; documents that hold no object (only comments) are skipped.
func referenceObjects(stream []byte) (map[string]map[string]any, error) {
	out := map[string]map[string]any{}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(stream)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		js, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, fmt.Errorf("%w in:\n%s", err, doc)
		}
		if t := bytes.TrimSpace(js); len(t) == 0 || bytes.Equal(t, []byte("null")) {
			continue
		}
		if err := addObject(out, js); err != nil {
			return nil, err
		}
	}
}

// addObject decodes one JSON object (numbers kept as json.Number, so both
// sides compare by their decimal text) and adds it under its key.
func addObject(into map[string]map[string]any, js []byte) error {
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return err
	}
	key := objectKey(obj)
	if _, dup := into[key]; dup {
		return fmt.Errorf("%s rendered twice", key)
	}
	into[key] = obj
	return nil
}

// objectKey is apiVersion/kind/namespace/name ("" namespace as rendered:
// neither side fills it in).
func objectKey(obj map[string]any) string {
	meta, _ := obj["metadata"].(map[string]any)
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
	return fmt.Sprintf("%s/%s/%s/%s", str(obj, "apiVersion"), str(obj, "kind"), str(meta, "namespace"), str(meta, "name"))
}

// withoutRandomNames renames the objects whose name starts with one of
// prefixes to prefix + "(random)", in their key and metadata.name.
func withoutRandomNames(objs map[string]map[string]any, prefixes []string) map[string]map[string]any {
	if len(prefixes) == 0 {
		return objs
	}
	out := make(map[string]map[string]any, len(objs))
	for k, obj := range objs {
		meta, _ := obj["metadata"].(map[string]any)
		name, _ := meta["name"].(string)
		for _, p := range prefixes {
			if strings.HasPrefix(name, p) {
				meta["name"] = p + "(random)"
				k = objectKey(obj)
				break
			}
		}
		out[k] = obj
	}
	return out
}

// blankData replaces the values of obj's data with "(random)", keeping the
// keys.
func blankData(obj map[string]any) {
	data, _ := obj["data"].(map[string]any)
	for k := range data {
		data[k] = "(random)"
	}
}

// compareObjects reports the keys only one side rendered and a unified diff
// (reference → keyless, as YAML) of the first object that differs.
func compareObjects(t *testing.T, got, want map[string]map[string]any) {
	t.Helper()
	var missing, extra, differ []string
	for k := range want {
		if _, ok := got[k]; !ok {
			missing = append(missing, k)
		}
	}
	for k, g := range got {
		w, ok := want[k]
		if !ok {
			extra = append(extra, k)
			continue
		}
		if !reflect.DeepEqual(g, w) {
			differ = append(differ, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	sort.Strings(differ)
	if len(missing) > 0 {
		t.Errorf("%d of the reference's %d objects not rendered by keyless: %s", len(missing), len(want), strings.Join(missing, ", "))
	}
	if len(extra) > 0 {
		t.Errorf("%d objects rendered by keyless only: %s", len(extra), strings.Join(extra, ", "))
	}
	if len(differ) > 0 {
		t.Errorf("%d objects differ: %s\nfirst, %s (--- reference, +++ keyless):\n%s", len(differ), strings.Join(differ, ", "), differ[0], yamlDiff(want[differ[0]], got[differ[0]]))
	}
	if !t.Failed() {
		t.Logf("%d objects equal", len(want))
	}
}

func yamlDiff(want, got map[string]any) string {
	w, _ := yaml.Marshal(want)
	g, _ := yaml.Marshal(got)
	d, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(string(w)), B: difflib.SplitLines(string(g)),
		FromFile: "reference", ToFile: "keyless", Context: 3,
	})
	if err != nil {
		return err.Error()
	}
	return d
}

package controller_test

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/cli"
	"github.com/keyless-cd/keyless/internal/controller"
	"github.com/keyless-cd/keyless/internal/render"
	"github.com/keyless-cd/keyless/internal/renderproc"
)

// TestHelmParametersRenderLikeHelmSet: an Application's helm.parameters
// and `keyless render --helm-set` give the same values (Helm's --set types),
// so `keyless diff` and the controller render a chart the same way.
func TestHelmParametersRenderLikeHelmSet(t *testing.T) {
	root := t.TempDir()
	for name, content := range map[string]string{
		"chart/Chart.yaml": "apiVersion: v2\nname: typed\nversion: 0.1.0\n",
		"chart/templates/cm.yaml": `apiVersion: v1
kind: ConfigMap
metadata: {name: typed}
data:
  replicas: {{ kindOf .Values.replicas | quote }}
  enabled: {{ kindOf .Values.enabled | quote }}
  tag: {{ printf "%v/%s" .Values.image.tag (kindOf .Values.image.tag) | quote }}
  text: {{ .Values.text | quote }}
`,
	} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	params := []kv1.HelmParameter{{Name: "replicas", Value: "3"}, {Name: "enabled", Value: "true"},
		{Name: "image.tag", Value: "1.10"}, {Name: "text", Value: `a,b\c`}}

	vals, err := controller.HelmValues(params)
	if err != nil {
		t.Fatal(err)
	}
	// Rendered as the controller renders: in a render process.
	runner, err := renderproc.New(renderproc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := runner.Render(t.Context(), render.Options{Root: root, Path: "chart", Namespace: "x", Helm: render.HelmOptions{Values: vals}})
	if err != nil {
		t.Fatal(err)
	}
	fromApp := res.Objects[0].Object["data"]

	args := []string{"render", filepath.Join(root, "chart"), "--root", root, "-n", "x"}
	for _, p := range params {
		args = append(args, "--helm-set", p.Name+"="+p.Value)
	}
	var out, errOut bytes.Buffer
	if code := cli.Run(t.Context(), args, cli.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}); code != 0 {
		t.Fatalf("keyless render: exit %d: %s", code, errOut.String())
	}
	var cm map[string]any
	if err := yaml.Unmarshal(out.Bytes(), &cm); err != nil {
		t.Fatalf("render output %q: %v", out.String(), err)
	}
	if !reflect.DeepEqual(cm["data"], fromApp) {
		t.Fatalf("the CLI and the controller render differently:\n cli %v\n app %v", cm["data"], fromApp)
	}
	want := map[string]any{"replicas": "int64", "enabled": "bool", "tag": "1.10/string", "text": `a,b\c`}
	if !reflect.DeepEqual(fromApp, want) {
		t.Errorf("values = %v, want Helm's --set types %v", fromApp, want)
	}
}

// TestHelmInlineValuesPrecedence: Argo CD's order — valueFiles, then the
// inline values (valuesObject replacing values), then parameters.
func TestHelmInlineValuesPrecedence(t *testing.T) {
	root := t.TempDir()
	for name, content := range map[string]string{
		"chart/Chart.yaml":        "apiVersion: v2\nname: inline\nversion: 0.1.0\n",
		"chart/values.yaml":       "a: chart\nb: chart\nc: chart\nd: chart\nnested: {x: chart, k: chart}\n",
		"chart/prod.yaml":         "b: file\nc: file\nd: file\nnested: {x: file}\n",
		"chart/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: inline}\ndata: {a: {{ .Values.a }}, b: {{ .Values.b }}, c: {{ .Values.c }}, d: {{ .Values.d }}, nx: {{ .Values.nested.x }}, nk: {{ .Values.nested.k }}}\n",
	} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	render1 := func(h kv1.HelmSource) map[string]any {
		t.Helper()
		app := &kv1.Application{Spec: kv1.ApplicationSpec{Source: kv1.ApplicationSource{Path: "chart", Helm: &h}}}
		app.Name, app.Namespace = "inline", "x"
		opts, err := controller.RenderOptions(app)
		if err != nil {
			t.Fatal(err)
		}
		opts.Root = root
		res, err := render.Render(t.Context(), opts)
		if err != nil {
			t.Fatal(err)
		}
		return res.Objects[0].Object["data"].(map[string]any)
	}
	got := render1(kv1.HelmSource{ValueFiles: []string{"prod.yaml"}, Values: "c: values\nd: values\nnested: {x: values}\n",
		Parameters: []kv1.HelmParameter{{Name: "d", Value: "param"}}})
	want := map[string]any{"a": "chart", "b": "file", "c": "values", "d": "param", "nx": "values", "nk": "chart"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("values: got %v, want %v", got, want)
	}
	got = render1(kv1.HelmSource{ValueFiles: []string{"prod.yaml"}, Values: "c: values\n",
		ValuesObject: &runtime.RawExtension{Raw: []byte(`{"b":"object"}`)}})
	want = map[string]any{"a": "chart", "b": "object", "c": "file", "d": "file", "nx": "file", "nk": "chart"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("valuesObject (replacing values): got %v, want %v", got, want)
	}
	app := &kv1.Application{Spec: kv1.ApplicationSpec{Source: kv1.ApplicationSource{Helm: &kv1.HelmSource{Values: "a: [unclosed"}}}}
	if _, err := controller.RenderOptions(app); err == nil || !strings.Contains(err.Error(), "spec.source.helm.values") {
		t.Errorf("bad inline values: err = %v, want the field named", err)
	}
}

package render

import (
	"errors"
	"strings"
	"testing"

	"github.com/keyless-cd/keyless/internal/confine"
)

// helm.valueFiles $ref/path read a values file of another source's
// checkout (Argo CD's multi-source values), confined to it.
func TestRenderHelmRefValues(t *testing.T) {
	chart := writeTree(t, map[string]string{
		"web/Chart.yaml":       "apiVersion: v2\nname: web\nversion: 1.0.0\n",
		"web/values.yaml":      "greeting: chart\n",
		"web/templates/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {greeting: {{ .Values.greeting | quote }}}\n",
	})
	env := writeTree(t, map[string]string{"envs/prod/values.yaml": "greeting: prod\n"})
	opts := Options{Root: chart, Path: "web", Namespace: "shop", RefRoots: map[string]string{"values": env},
		Helm: HelmOptions{ValueFiles: []string{"$values/envs/prod/values.yaml"}}}
	res, err := Render(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Objects[0].Object["data"].(map[string]any)["greeting"]; got != "prod" {
		t.Fatalf("greeting = %v, want prod from $values", got)
	}
	opts.Helm.ValueFiles = []string{"$values/../../etc/passwd"}
	if _, err := Render(t.Context(), opts); !errors.Is(err, confine.ErrOutsideRoot) {
		t.Fatalf("escaping $values path: err = %v, want ErrOutsideRoot", err)
	}
	opts.Helm.ValueFiles = []string{"$other/values.yaml"}
	if _, err := Render(t.Context(), opts); err == nil || !strings.Contains(err.Error(), "$other") {
		t.Fatalf("unknown ref: err = %v, want it named", err)
	}
}

package codify

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const manifests = `# the web tier
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2 # scaled by the HPA? no: by hand
  template:
    spec:
      containers:
        - name: web
          image: "registry.example.com/web:1.0"
          env:
            - name: MODE
              value: normal
            - name: DEBUG
              value: "false"
        - name: sidecar
          image: registry.example.com/proxy:2
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  color: blue
  size: '10'
`

func live(objs map[string]map[string]any) Live {
	return func(apiVersion, kind, name string) (map[string]any, error) {
		return objs[kind+"/"+name], nil
	}
}

// TestEditWritesExactlyTheDrift: the live values of the scalars the
// manifests set are written in place; every other byte stays.
func TestEditWritesExactlyTheDrift(t *testing.T) {
	deploy := map[string]any{"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "web", "labels": map[string]any{"app": "web", "added": "by-hand"}},
		"spec": map[string]any{"replicas": int64(5), "template": map[string]any{"spec": map[string]any{"containers": []any{
			// the sidecar moved first: matched by name, not index
			map[string]any{"name": "sidecar", "image": "registry.example.com/proxy:2"},
			map[string]any{"name": "web", "image": "registry.example.com/web:1.1", "env": []any{
				map[string]any{"name": "MODE", "value": "degraded"},
				map[string]any{"name": "DEBUG", "value": "false"},
			}},
		}}}}}
	cm := map[string]any{"metadata": map[string]any{"name": "settings"}, "data": map[string]any{"color": "blue", "size": "10"}}
	res, err := Edit(map[string][]byte{"deploy/app.yaml": []byte(manifests), "deploy/README.md": []byte("kind: Deployment")},
		ParseDrift([]string{"Deployment/web configured (by kubectl-edit)", "ConfigMap/settings configured"}),
		live(map[string]map[string]any{"Deployment/web": deploy, "ConfigMap/settings": cm}))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.NewReplacer(
		"replicas: 2 #", "replicas: 5 #",
		`image: "registry.example.com/web:1.0"`, `image: "registry.example.com/web:1.1"`,
		"value: normal", "value: degraded",
	).Replace(manifests)
	if got := string(res.Files["deploy/app.yaml"]); got != want {
		t.Errorf("edited file:\n%s\nwant:\n%s", got, want)
	}
	if len(res.Files) != 1 || len(res.Changes) != 3 {
		t.Errorf("files %d, changes %+v: want one file, three changes", len(res.Files), res.Changes)
	}
	if c := res.Changes[0]; c.Object != "Deployment/web" || c.Path != "spec.replicas" || c.Old != "2" || c.New != "5" {
		t.Errorf("first change %+v", c)
	}
}

// TestEditSkips: what is not written back is said, and a Secret never is.
func TestEditSkips(t *testing.T) {
	files := map[string][]byte{"a.yaml": []byte("apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\nstringData:\n  password: old\n---\n" +
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: gone\ndata:\n  a: b\n---\n" +
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: list\ndata:\n  a: b\nitems: [1, 2]\n")}
	objs := map[string]map[string]any{
		"Secret/creds":   {"stringData": map[string]any{"password": "leaked"}},
		"ConfigMap/list": {"metadata": map[string]any{"name": "list"}, "data": map[string]any{}, "items": []any{int64(1), int64(2), int64(3)}},
	}
	res, err := Edit(files, ParseDrift([]string{"Secret/creds configured", "ConfigMap/gone created", "ConfigMap/list configured", "Deployment/rendered configured"}), live(objs))
	if !errors.Is(err, ErrNothingToCodify) {
		t.Fatalf("err %v, want ErrNothingToCodify", err)
	}
	all := strings.Join(res.Skipped, "\n")
	for _, want := range []string{"Secret/creds: a Secret's values are never written", "ConfigMap/gone: deleted in the cluster", "ConfigMap/list data.a: removed live",
		"ConfigMap/list items: has 3 entries live, 2 in Git", "Deployment/rendered: no manifest"} {
		if !strings.Contains(all, want) {
			t.Errorf("skipped:\n%s\nwant %q", all, want)
		}
	}
	if strings.Contains(string(res.Files["a.yaml"]), "leaked") {
		t.Fatal("a Secret's live value was written")
	}
}

// FuzzEdit: any manifest and live object: no panic, and every file Edit
// returns still parses with the same number of documents.
func FuzzEdit(f *testing.F) {
	f.Add(manifests, `{"spec": {"replicas": 3}}`)
	f.Add("kind: ConfigMap\nmetadata: {name: settings}\ndata: &a {x: 1}\nother: *a\n", `{"data": {"x": "2"}}`)
	f.Fuzz(func(t *testing.T, doc, liveJSON string) {
		var obj map[string]any
		if err := jsonUnmarshal(liveJSON, &obj); err != nil || obj == nil {
			return
		}
		res, err := Edit(map[string][]byte{"m.yaml": []byte(doc)}, []Ref{{Kind: "Deployment", Name: "web"}, {Kind: "ConfigMap", Name: "settings"}},
			func(string, string, string) (map[string]any, error) { return obj, nil })
		if err != nil {
			return
		}
		for _, c := range res.Changes {
			if c.Old == c.New {
				t.Fatalf("a change that changes nothing: %+v", c)
			}
		}
	})
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

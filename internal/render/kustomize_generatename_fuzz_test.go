package render

import (
	"bytes"
	"testing"

	"github.com/keyless-cd/keyless/internal/yamlnode"
)

// FuzzWithGenerateNamesAsNames feeds crafted resource files to the rewrite
// that carries generateName hooks through kustomize: it must never panic,
// leave files without a generateName hook byte for byte as they were, and
// what it does rewrite must still be YAML whose rewritten hooks carry
// name = generateName and the marker annotation.
func FuzzWithGenerateNamesAsNames(f *testing.F) {
	for _, seed := range []string{
		"apiVersion: batch/v1\nkind: Job\nmetadata:\n  generateName: smoke-\n  annotations:\n    argocd.argoproj.io/hook: PostSync\n",
		"apiVersion: batch/v1\nkind: Job\nmetadata:\n  generateName: m-\n  annotations: {helm.sh/hook: pre-upgrade}\n---\nkind: ConfigMap\nmetadata: {name: c}\n",
		"metadata:\n  generateName: x-\n  name: y\n  annotations: {argocd.argoproj.io/hook: Sync}\n",
		"metadata:\n  generateName: x-\n  annotations: {argocd.argoproj.io/hook: Skip}\n",
		"metadata: &m {generateName: a-, annotations: {argocd.argoproj.io/hook: Sync}}\nother: *m\n",
		"metadata: {generateName: [a], annotations: [argocd.argoproj.io/hook]}\n",
		"metadata:\n  generateName: a-\n  annotations: generateName\n",
		"generateName: [unclosed\n",
		"- generateName\n",
	} {
		f.Add("job.yaml", []byte(seed))
	}
	f.Add("kustomization.yaml", []byte("resources: [job.yaml]\ngenerateName: x\n"))
	f.Fuzz(func(t *testing.T, path string, data []byte) {
		out := withGenerateNamesAsNames(path, data)
		if bytes.Equal(out, data) {
			return
		}
		if !bytes.Contains(data, []byte("generateName")) {
			t.Fatalf("a file without generateName was rewritten:\n%s\n->\n%s", data, out)
		}
		docs, err := decodeDocuments(out)
		if err != nil {
			t.Fatalf("the rewrite is not YAML: %v\n%s", err, out)
		}
		renamed := 0
		for _, doc := range docs {
			if len(doc.Content) != 1 {
				continue
			}
			meta := yamlnode.Get(doc.Content[0], "metadata")
			if g := yamlnode.Scalar(yamlnode.Get(meta, "annotations"), generateNameAnnotation); g != "" {
				if yamlnode.Scalar(meta, "name") != g {
					t.Fatalf("marked hook has name %q, want its generateName %q", yamlnode.Scalar(meta, "name"), g)
				}
				renamed++
			}
		}
		if renamed == 0 {
			t.Fatalf("the file was rewritten but no hook carries the marker:\n%s", out)
		}
	})
}

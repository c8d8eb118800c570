package render

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/keyless-cd/keyless/internal/lifecycle"
	"github.com/keyless-cd/keyless/internal/yamlnode"
)

// generateNameAnnotation carries a hook's generateName through kustomize,
// which refuses objects without metadata.name (kubernetes-sigs/kustomize#641):
// on the way in the hook gets name = generateName and this annotation; on
// the way out its (possibly prefixed) name becomes its generateName again.
const generateNameAnnotation = "keyless.dev/kustomize-generate-name"

// withGenerateNamesAsNames rewrites the documents of a resource file whose
// hooks use generateName without a name. Files without such a hook are
// returned unchanged (byte for byte), as are kustomization files.
func withGenerateNamesAsNames(path string, data []byte) []byte {
	switch filepath.Base(path) {
	case "kustomization.yaml", "kustomization.yml", "Kustomization":
		return data
	}
	if !bytes.Contains(data, []byte("generateName")) {
		return data
	}
	docs, err := decodeDocuments(data)
	if err != nil {
		return data // let kustomize report the file's own error
	}
	changed := false
	for _, doc := range docs {
		if len(doc.Content) == 1 && nameGenerateName(doc.Content[0]) {
			changed = true
		}
	}
	if !changed {
		return data
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	for _, d := range docs {
		if err := enc.Encode(d); err != nil {
			return data
		}
	}
	_ = enc.Close()
	return out.Bytes()
}

// decodeDocuments decodes every YAML document of data as a node tree.
func decodeDocuments(data []byte) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for {
		doc := &yaml.Node{}
		err := dec.Decode(doc)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		docs = append(docs, doc)
	}
}

// nameGenerateName gives a hook document with generateName and no name
// name = generateName and the marker annotation; it reports whether it did.
func nameGenerateName(obj *yaml.Node) bool {
	meta := yamlnode.Get(obj, "metadata")
	gen := yamlnode.Scalar(meta, "generateName")
	if meta == nil || gen == "" || yamlnode.Get(meta, "name") != nil {
		return false
	}
	ann := yamlnode.Get(meta, "annotations")
	hook := yamlnode.Scalar(ann, lifecycle.ArgoHookAnnotation)
	if (hook == "" || strings.TrimSpace(hook) == "Skip") && yamlnode.Scalar(ann, lifecycle.HelmHookAnnotation) == "" {
		return false
	}
	scalar := func(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v} }
	meta.Content = append(meta.Content, scalar("name"), scalar(gen))
	ann.Content = append(ann.Content, scalar(generateNameAnnotation), scalar(gen))
	return true
}

// restoreGenerateName turns a hook marked on the way in back into a
// generateName object.
func restoreGenerateName(u *unstructured.Unstructured) {
	ann := u.GetAnnotations()
	if _, ok := ann[generateNameAnnotation]; !ok {
		return
	}
	delete(ann, generateNameAnnotation)
	if len(ann) == 0 {
		ann = nil
	}
	u.SetAnnotations(ann)
	u.SetGenerateName(u.GetName())
	u.SetName("")
}

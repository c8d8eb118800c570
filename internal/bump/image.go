package bump

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/distribution/reference"
	yaml "go.yaml.in/yaml/v3"
)

// ImageRef is an image to set: the name matched, and the new reference.
type ImageRef struct {
	// Name is the repository matched in the file (no tag or digest).
	Name string
	// Ref is the full new reference (name:tag, name@digest or name:tag@digest).
	Ref string
	// NewName, Tag and Digest are Ref's parts.
	NewName, Tag, Digest string
}

// ParseImage parses "NAME=REF" (or just "REF", when the name does not change).
func ParseImage(s string) (ImageRef, error) {
	name, ref, ok := strings.Cut(s, "=")
	if !ok {
		ref = name
	}
	parsed, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ImageRef{}, fmt.Errorf("--image %q: %q is not an image reference: %w", s, ref, err)
	}
	out := ImageRef{Ref: ref, NewName: strings.Split(strings.Split(ref, "@")[0], ":")[0]}
	if t, ok := parsed.(reference.Tagged); ok {
		out.Tag = t.Tag()
	}
	if d, ok := parsed.(reference.Digested); ok {
		out.Digest = d.Digest().String()
	}
	out.NewName = trimTagDigest(ref)
	if out.Tag == "" && out.Digest == "" {
		return ImageRef{}, fmt.Errorf("--image %q: the new reference needs a tag or a digest", s)
	}
	if !ok {
		out.Name = out.NewName
	} else {
		if _, err := reference.ParseNormalizedNamed(name); err != nil {
			return ImageRef{}, fmt.Errorf("--image %q: %q is not an image name: %w", s, name, err)
		}
		out.Name = trimTagDigest(name)
	}
	return out, nil
}

// trimTagDigest removes ":tag" and "@digest" (but not a registry port).
func trimTagDigest(ref string) string {
	ref, _, _ = strings.Cut(ref, "@")
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		ref = ref[:i]
	}
	return ref
}

// SetImage sets img in a kustomization (images[]) or in the containers and
// initContainers of workload manifests. It returns how many places matched.
func (f *File) SetImage(img ImageRef) (int, error) {
	total := 0
	for i, d := range f.docs {
		root := d.root
		if len(root.Content) == 0 {
			continue
		}
		m := root.Content[0]
		docNum := 0
		if len(f.docs) > 1 {
			docNum = i + 1
		}
		kind := scalarAt(m, "kind")
		switch {
		case kind == "Kustomization" || (kind == "" && mapGet(m, "images") != nil) || (kind == "" && mapGet(m, "resources") != nil):
			n, err := f.setKustomizeImage(m, img, docNum)
			if err != nil {
				return total, err
			}
			total += n
		default:
			n, err := f.setContainerImages(m, img, docNum)
			if err != nil {
				return total, err
			}
			total += n
		}
	}
	if total == 0 {
		return 0, fmt.Errorf("%s: no image named %s found (looked in kustomization images and in containers of Deployment, StatefulSet, DaemonSet, Job, CronJob and Pod manifests)", f.Name, img.Name)
	}
	return total, nil
}

func (f *File) setKustomizeImage(m *yaml.Node, img ImageRef, docNum int) (int, error) {
	images := mapGet(m, "images")
	if images == nil || images.Kind != yaml.SequenceNode {
		return 0, fmt.Errorf("%s: kustomization has no images list; add `images: [{name: %s, newTag: ...}]` first", f.Name, img.Name)
	}
	for i, e := range images.Content {
		if e.Kind != yaml.MappingNode || scalarAt(e, "name") != img.Name {
			continue
		}
		base := fmt.Sprintf("images[%d]", i)
		set := func(key, value string) error {
			n := mapGet(e, key)
			if n == nil {
				return fmt.Errorf("%s:%d: %s has no %s; add it to the entry first", f.Name, e.Line, base, key)
			}
			return f.setNode(n, base+"."+key, docNum, value)
		}
		if img.NewName != img.Name || mapGet(e, "newName") != nil {
			if err := set("newName", img.NewName); err != nil {
				return 0, err
			}
		}
		if img.Tag != "" {
			if err := set("newTag", img.Tag); err != nil {
				return 0, err
			}
		}
		if img.Digest != "" {
			if err := set("digest", img.Digest); err != nil {
				return 0, err
			}
		}
		return 1, nil
	}
	return 0, fmt.Errorf("%s: kustomization images has no entry named %s; add one first", f.Name, img.Name)
}

// podSpecPaths are where each workload kind keeps its pod spec.
var podSpecPaths = map[string][]string{
	"Deployment": {"spec", "template", "spec"}, "StatefulSet": {"spec", "template", "spec"},
	"DaemonSet": {"spec", "template", "spec"}, "ReplicaSet": {"spec", "template", "spec"},
	"Job": {"spec", "template", "spec"}, "CronJob": {"spec", "jobTemplate", "spec", "template", "spec"},
	"Pod": {"spec"},
}

func (f *File) setContainerImages(m *yaml.Node, img ImageRef, docNum int) (int, error) {
	path, ok := podSpecPaths[scalarAt(m, "kind")]
	if !ok {
		return 0, nil
	}
	spec := m
	for _, k := range path {
		if spec = mapGet(spec, k); spec == nil {
			return 0, nil
		}
	}
	n := 0
	for _, list := range []string{"initContainers", "containers"} {
		cs := mapGet(spec, list)
		if cs == nil || cs.Kind != yaml.SequenceNode {
			continue
		}
		for i, c := range cs.Content {
			imageNode := mapGet(c, "image")
			if imageNode == nil || imageNode.Kind != yaml.ScalarNode || trimTagDigest(imageNode.Value) != img.Name {
				continue
			}
			p := strings.Join(path, ".") + "." + list + "[" + strconv.Itoa(i) + "].image"
			if err := f.setNode(imageNode, p, docNum, img.Ref); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

func mapGet(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func scalarAt(m *yaml.Node, key string) string {
	if n := mapGet(m, key); n != nil && n.Kind == yaml.ScalarNode {
		return n.Value
	}
	return ""
}

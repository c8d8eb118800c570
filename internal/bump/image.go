package bump

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/distribution/reference"
	yaml "go.yaml.in/yaml/v3"

	"github.com/keyless-cd/keyless/internal/yamlnode"
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
		kind := yamlnode.Scalar(m, "kind")
		switch {
		case kind == "Kustomization" || (kind == "" && yamlnode.Get(m, "images") != nil) || (kind == "" && yamlnode.Get(m, "resources") != nil):
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
	images := yamlnode.Get(m, "images")
	if images == nil {
		return f.addImagesKey(m, img)
	}
	if images.Kind != yaml.SequenceNode {
		return 0, fmt.Errorf("%s:%d: kustomization images is not a list", f.Name, images.Line)
	}
	for i, e := range images.Content {
		if e.Kind != yaml.MappingNode || yamlnode.Scalar(e, "name") != img.Name {
			continue
		}
		base := fmt.Sprintf("images[%d]", i)
		set := func(key, value string) error {
			n := yamlnode.Get(e, key)
			if n == nil {
				return fmt.Errorf("%s:%d: %s has no %s; add it to the entry first", f.Name, e.Line, base, key)
			}
			return f.setNode(n, base+"."+key, docNum, value)
		}
		if img.NewName != img.Name || yamlnode.Get(e, "newName") != nil {
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
	return f.addImageEntry(images, img)
}

// imageEntry is the YAML of a new images[] entry, each line prefixed.
func imageEntry(img ImageRef, dash, indent, nl string) string {
	var b strings.Builder
	b.WriteString(dash + "- name: " + img.Name + nl)
	if img.NewName != img.Name {
		b.WriteString(indent + "newName: " + img.NewName + nl)
	}
	if img.Tag != "" {
		b.WriteString(indent + "newTag: " + doubleQuote(img.Tag) + nl)
	}
	if img.Digest != "" {
		b.WriteString(indent + "digest: " + img.Digest + nl)
	}
	return b.String()
}

// checkEntry validates that added is exactly one images[] entry for img.
func checkEntry(img ImageRef) func([]*yaml.Node) error {
	return func(added []*yaml.Node) error {
		if len(added) != 1 || yamlnode.Scalar(added[0], "name") != img.Name || yamlnode.Scalar(added[0], "newTag") != img.Tag || yamlnode.Scalar(added[0], "digest") != img.Digest {
			return fmt.Errorf("the added images entry does not read back as %s", img.Ref)
		}
		return nil
	}
}

// newline is the file's line ending.
func (f *File) newline() string {
	if bytes.Contains(f.data, []byte("\r\n")) {
		return "\r\n"
	}
	return "\n"
}

// addImageEntry appends an entry to a block images list, indented like its items.
func (f *File) addImageEntry(images *yaml.Node, img ImageRef) (int, error) {
	if images.Style&yaml.FlowStyle != 0 || len(images.Content) == 0 {
		return 0, fmt.Errorf("%s:%d: kustomization images has no entry named %s and is a flow list; add the entry by hand", f.Name, images.Line, img.Name)
	}
	first, last := images.Content[0], images.Content[len(images.Content)-1]
	lineStart := f.lines[first.Line-1]
	line := f.data[lineStart:]
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	trimmed := bytes.TrimLeft(line, " ")
	if !bytes.HasPrefix(trimmed, []byte("- ")) {
		return 0, fmt.Errorf("%s:%d: cannot infer the indentation of images; add the entry for %s by hand", f.Name, first.Line, img.Name)
	}
	dash := string(line[:len(line)-len(trimmed)])
	indent := strings.Repeat(" ", first.Column-1)
	end := lastLine(last)
	at := len(f.data)
	if end < len(f.lines) {
		at = f.lines[end]
	}
	text := imageEntry(img, dash, indent, f.newline())
	if at == len(f.data) && len(f.data) > 0 && f.data[len(f.data)-1] != '\n' {
		text = f.newline() + text
	}
	f.edits = append(f.edits, edit{start: at, end: at, text: text, grows: images, check: checkEntry(img)})
	f.changes = append(f.changes, Change{Path: "images[" + strconv.Itoa(len(images.Content)) + "]", Old: "", New: img.Ref})
	return 1, nil
}

// addImagesKey appends an images list to a kustomization that has none.
func (f *File) addImagesKey(m *yaml.Node, img ImageRef) (int, error) {
	if len(f.docs) != 1 || m.Style&yaml.FlowStyle != 0 {
		return 0, fmt.Errorf("%s: kustomization has no images list; add `images:` by hand", f.Name)
	}
	nl := f.newline()
	text := "images:" + nl + imageEntry(img, "", "  ", nl)
	at := len(f.data)
	if at > 0 && f.data[at-1] != '\n' {
		text = nl + text
	}
	f.edits = append(f.edits, edit{start: at, end: at, text: text, grows: m, check: func(added []*yaml.Node) error {
		if len(added) != 2 || added[0].Value != "images" || added[1].Kind != yaml.SequenceNode {
			return fmt.Errorf("the added images list does not read back")
		}
		return checkEntry(img)(added[1].Content)
	}})
	f.changes = append(f.changes, Change{Path: "images[0]", Old: "", New: img.Ref})
	return 1, nil
}

// lastLine is the last line any node below n starts on.
func lastLine(n *yaml.Node) int {
	line := n.Line
	for _, c := range n.Content {
		line = max(line, lastLine(c))
	}
	return line
}

// podTemplateSpec is where a workload keeps its pod spec.
var podTemplateSpec = []string{"spec", "template", "spec"}

// podSpecPaths are where each workload kind keeps its pod spec.
var podSpecPaths = map[string][]string{
	"Deployment": podTemplateSpec, "StatefulSet": podTemplateSpec,
	"DaemonSet": podTemplateSpec, "ReplicaSet": podTemplateSpec,
	"Job": podTemplateSpec, "CronJob": append([]string{"spec", "jobTemplate"}, podTemplateSpec...),
	"Pod": {"spec"},
}

func (f *File) setContainerImages(m *yaml.Node, img ImageRef, docNum int) (int, error) {
	path, ok := podSpecPaths[yamlnode.Scalar(m, "kind")]
	if !ok {
		return 0, nil
	}
	spec := m
	for _, k := range path {
		if spec = yamlnode.Get(spec, k); spec == nil {
			return 0, nil
		}
	}
	n := 0
	for _, list := range []string{"initContainers", "containers"} {
		cs := yamlnode.Get(spec, list)
		if cs == nil || cs.Kind != yaml.SequenceNode {
			continue
		}
		for i, c := range cs.Content {
			imageNode := yamlnode.Get(c, "image")
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

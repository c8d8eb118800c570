package render

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// document is one YAML document of a file: its first line (1-based) and bytes.
type document struct {
	line int
	data []byte
}

// splitDocuments splits a YAML stream on "---" separator lines (a separator may
// be followed by a comment), keeping each document's first line number.
func splitDocuments(data []byte) []document {
	var docs []document
	start, startLine, line := 0, 1, 1
	for pos := 0; pos <= len(data); {
		end := bytes.IndexByte(data[pos:], '\n')
		var l []byte
		next := len(data) + 1
		if end >= 0 {
			l = data[pos : pos+end]
			next = pos + end + 1
		} else {
			l = data[pos:]
		}
		if isSeparator(l) {
			docs = append(docs, document{line: startLine, data: data[start:pos]})
			start, startLine = min(next, len(data)), line+1
		}
		pos = next
		line++
	}
	if start < len(data) {
		docs = append(docs, document{line: startLine, data: data[start:]})
	}
	return docs
}

func isSeparator(l []byte) bool {
	l = bytes.TrimRight(l, "\r")
	if !bytes.HasPrefix(l, []byte("---")) {
		return false
	}
	rest := bytes.TrimSpace(l[3:])
	return len(rest) == 0 || rest[0] == '#'
}

var yamlLineRE = regexp.MustCompile(`line (\d+)`)

// decodeError rewrites a YAML parser error so that it names file:line in the
// whole file rather than the line within the document.
func decodeError(file string, doc document, err error) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "error converting YAML to JSON: ")
	msg = strings.TrimPrefix(msg, "yaml: ")
	line := doc.line
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		if n, convErr := strconv.Atoi(m[1]); convErr == nil {
			line = doc.line + n - 1
			msg = strings.Replace(msg, m[0], "", 1)
			msg = strings.TrimLeft(msg, ": ")
		}
	}
	return fmt.Errorf("%s:%d: invalid YAML: %s", file, line, msg)
}

// sourced is a decoded object and where it came from (file:line).
type sourced struct {
	obj    *unstructured.Unstructured
	source string
}

// decodeObjects decodes every document of data (named file in messages) into
// Kubernetes objects, unwrapping List kinds. Empty documents are skipped.
// YAML is converted as kubectl does (sigs.k8s.io/yaml), whose parser refuses
// excessive alias expansion ("billion laughs"). Objects are counted while
// decoding: past left objects it stops with a *LimitError.
func decodeObjects(file string, data []byte, left int) ([]sourced, error) {
	var out []sourced
	for _, doc := range splitDocuments(data) {
		if len(bytes.TrimSpace(doc.data)) == 0 {
			continue
		}
		if len(out) >= left {
			return nil, tooManyObjects(file+":"+strconv.Itoa(firstContentLine(doc)), left)
		}
		js, err := yaml.YAMLToJSON(doc.data)
		if err != nil {
			return nil, decodeError(file, doc, err)
		}
		js = bytes.TrimSpace(js)
		if bytes.Equal(js, []byte("null")) {
			continue
		}
		source := file + ":" + strconv.Itoa(firstContentLine(doc))
		if js[0] != '{' {
			return nil, fmt.Errorf("%s: expected a Kubernetes object (a mapping with apiVersion and kind), got %s", source, jsonKind(js))
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(js); err != nil {
			return nil, fmt.Errorf("%s: %w", source, objectError(err))
		}
		if isList(u) {
			items, err := listItems(source, u)
			if err != nil {
				return nil, err
			}
			if len(out)+len(items) > left {
				return nil, tooManyObjects(source, left)
			}
			out = append(out, items...)
			continue
		}
		out = append(out, sourced{obj: u, source: source})
	}
	return out, nil
}

// firstContentLine is the line of the document's first line that is neither
// blank nor a comment: where the object visibly starts.
func firstContentLine(doc document) int {
	for i, l := range bytes.Split(doc.data, []byte("\n")) {
		t := bytes.TrimSpace(l)
		if len(t) > 0 && t[0] != '#' {
			return doc.line + i
		}
	}
	return doc.line
}

func jsonKind(js []byte) string {
	switch js[0] {
	case '[':
		return "a list"
	case '"':
		return "a string"
	default:
		return "a scalar"
	}
}

// objectError makes unstructured's decode errors readable.
func objectError(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "Object 'Kind' is missing"):
		return fmt.Errorf("object has no kind")
	case strings.Contains(msg, "Object 'apiVersion' is missing"):
		return fmt.Errorf("object has no apiVersion")
	}
	return err
}

func isList(u *unstructured.Unstructured) bool {
	if !strings.HasSuffix(u.GetKind(), "List") {
		return false
	}
	_, ok := u.Object["items"].([]any)
	return ok
}

func listItems(source string, list *unstructured.Unstructured) ([]sourced, error) {
	items := list.Object["items"].([]any)
	out := make([]sourced, 0, len(items))
	for i, item := range items {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: %s item %d is not an object", source, list.GetKind(), i)
		}
		out = append(out, sourced{obj: &unstructured.Unstructured{Object: m}, source: fmt.Sprintf("%s (%s item %d)", source, list.GetKind(), i)})
	}
	return out, nil
}

// DecodeManifests decodes every document of data (named file in messages)
// as a render of a plain directory does — List kinds unwrapped, at most
// maxObjects objects (a *LimitError past that) — and returns the objects with where
// each came from (file:line).
func DecodeManifests(file string, data []byte, maxObjects int) ([]*unstructured.Unstructured, []string, error) {
	docs, err := decodeObjects(file, data, maxObjects)
	if err != nil {
		return nil, nil, err
	}
	objs := make([]*unstructured.Unstructured, len(docs))
	sources := make([]string, len(docs))
	for i, d := range docs {
		objs[i], sources[i] = d.obj, d.source
	}
	return objs, sources, nil
}

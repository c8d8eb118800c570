// Package yamlnode reads yaml.v3 node trees (which keep line numbers and
// source positions) the way code reads maps: a value by key, a scalar, a list.
package yamlnode

import yaml "go.yaml.in/yaml/v3"

// Get returns the value of key in mapping m, or nil.
func Get(m *yaml.Node, key string) *yaml.Node {
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

// Scalar returns the scalar value of key in mapping m, or "".
func Scalar(m *yaml.Node, key string) string {
	if n := Get(m, key); n != nil && n.Kind == yaml.ScalarNode {
		return n.Value
	}
	return ""
}

// Seq returns the items of sequence n, or nil.
func Seq(n *yaml.Node) []*yaml.Node {
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	return n.Content
}

// Scalars returns the values of sequence n's items.
func Scalars(n *yaml.Node) []string {
	var out []string
	for _, c := range Seq(n) {
		out = append(out, c.Value)
	}
	return out
}

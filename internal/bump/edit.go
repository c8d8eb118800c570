package bump

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"
)

// Change is one scalar changed (or already at its value).
type Change struct {
	Path     string `json:"path"`
	Document int    `json:"document,omitempty"`
	Old      string `json:"old"`
	New      string `json:"new"`
}

// doc is one parsed YAML document of a file.
type doc struct {
	root *yaml.Node
}

// edit is a pending replacement of bytes [start, end) (an insertion when
// start == end).
type edit struct {
	start, end int
	text       string
	node       *yaml.Node
	value      string
	// grows, for an insertion, is the mapping or sequence that gains entries,
	// and check validates what it gained.
	grows *yaml.Node
	check func(added []*yaml.Node) error
}

// File is a YAML file being edited. Edits are collected, then applied at
// once by Bytes, which also checks that nothing but the targets changed.
type File struct {
	Name    string
	data    []byte
	docs    []doc
	lines   []int // byte offset of each line start
	edits   []edit
	changes []Change
}

// MaxFileBytes caps the files bump edits.
const MaxFileBytes = 10 << 20

// Parse reads data (named name in errors) as a stream of YAML documents.
func Parse(name string, data []byte) (*File, error) {
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, MaxFileBytes)
	}
	f := &File{Name: name, data: data, lines: []int{0}}
	for i, b := range data {
		if b == '\n' {
			f.lines = append(f.lines, i+1)
		}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: invalid YAML: %s", name, strings.TrimPrefix(err.Error(), "yaml: "))
		}
		f.docs = append(f.docs, doc{root: &n})
	}
	return f, nil
}

// Set sets the scalar at path to value in the one document that has it.
func (f *File) Set(path Path, value string) error {
	var found []*yaml.Node
	var docIdx []int
	var firstErr error
	for i, d := range f.docs {
		n, err := lookup(d.root, path)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		found = append(found, n)
		docIdx = append(docIdx, i+1)
	}
	switch {
	case len(found) == 0 && firstErr != nil:
		return fmt.Errorf("%s: %s: %w", f.Name, path, firstErr)
	case len(found) == 0:
		return fmt.Errorf("%s: %s: the file has no YAML document", f.Name, path)
	case len(found) > 1:
		return fmt.Errorf("%s: %s exists in documents %v; keyless will not guess which to change", f.Name, path, docIdx)
	}
	doc := 0
	if len(f.docs) > 1 {
		doc = docIdx[0]
	}
	return f.setNode(found[0], path.String(), doc, value)
}

// setNode records the replacement of scalar n by value.
func (f *File) setNode(n *yaml.Node, path string, docNum int, value string) error {
	if n.Kind == yaml.AliasNode {
		return fmt.Errorf("%s:%d: %s is an alias (*%s); change the anchored value instead", f.Name, n.Line, path, n.Value)
	}
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("%s:%d: %s is a %s, not a scalar value", f.Name, n.Line, path, kindName(n.Kind))
	}
	for _, e := range f.edits {
		if e.node == n {
			return fmt.Errorf("%s:%d: %s is set twice", f.Name, n.Line, path)
		}
	}
	f.changes = append(f.changes, Change{Path: path, Document: docNum, Old: n.Value, New: value})
	if n.Value == value {
		return nil
	}
	start, end, err := f.extent(n)
	if err != nil {
		return fmt.Errorf("%s:%d: %s: %w", f.Name, n.Line, path, err)
	}
	f.edits = append(f.edits, edit{start: start, end: end, text: render(n, value), node: n, value: value})
	return nil
}

// Documents returns the roots of the file's documents, for callers that
// find the scalars to change themselves (SetNode); they must not modify them.
func (f *File) Documents() []*yaml.Node {
	out := make([]*yaml.Node, len(f.docs))
	for i, d := range f.docs {
		out[i] = d.root
	}
	return out
}

// SetNode records the replacement of scalar n, found under Documents()[doc]
// at path (for messages), by value; Bytes applies it with the rest.
func (f *File) SetNode(doc int, n *yaml.Node, path string, value string) error {
	docNum := 0
	if len(f.docs) > 1 {
		docNum = doc + 1
	}
	return f.setNode(n, path, docNum, value)
}

// Changes returns what Set and SetImage found, in order.
func (f *File) Changes() []Change { return f.changes }

// Changed reports whether any value differs from its target.
func (f *File) Changed() bool { return len(f.edits) > 0 }

// Bytes applies the edits and verifies, by parsing the result, that exactly
// the targeted scalars changed and every other node is as it was.
func (f *File) Bytes() ([]byte, error) {
	if len(f.edits) == 0 {
		return f.data, nil
	}
	edits := append([]edit(nil), f.edits...)
	sort.Slice(edits, func(i, j int) bool { return edits[i].start < edits[j].start })
	var out bytes.Buffer
	last := 0
	for _, e := range edits {
		if e.start < last {
			return nil, fmt.Errorf("%s: overlapping edits", f.Name)
		}
		out.Write(f.data[last:e.start])
		out.WriteString(e.text)
		last = e.end
	}
	out.Write(f.data[last:])
	res := out.Bytes()
	after, err := Parse(f.Name, res)
	if err != nil {
		return nil, fmt.Errorf("internal error: the edited file does not parse, nothing written: %w", err)
	}
	targets := map[*yaml.Node]string{}
	grown := map[*yaml.Node]func([]*yaml.Node) error{}
	for _, e := range f.edits {
		if e.grows != nil {
			grown[e.grows] = e.check
			continue
		}
		targets[e.node] = e.value
	}
	if len(after.docs) != len(f.docs) {
		return nil, fmt.Errorf("internal error: the edit changed the number of documents of %s, nothing written", f.Name)
	}
	for i := range f.docs {
		if err := sameExcept(f.docs[i].root, after.docs[i].root, targets, grown); err != nil {
			return nil, fmt.Errorf("internal error: the edit of %s would change more than the targets (%w), nothing written", f.Name, err)
		}
	}
	return res, nil
}

// sameExcept compares two trees; targets must carry their new value, and
// grown nodes may have gained entries at their end, which check validates.
func sameExcept(a, b *yaml.Node, targets map[*yaml.Node]string, grown map[*yaml.Node]func([]*yaml.Node) error) error {
	if want, ok := targets[a]; ok {
		if b.Kind != yaml.ScalarNode || b.Value != want {
			return fmt.Errorf("line %d: got %q, want %q", b.Line, b.Value, want)
		}
		return nil
	}
	content := b.Content
	if check, ok := grown[a]; ok && len(b.Content) > len(a.Content) {
		if err := check(b.Content[len(a.Content):]); err != nil {
			return err
		}
		content = b.Content[:len(a.Content)]
	}
	if a.Kind != b.Kind || a.Value != b.Value || a.Tag != b.Tag || a.Anchor != b.Anchor || len(a.Content) != len(content) {
		return fmt.Errorf("line %d: node differs", b.Line)
	}
	for i := range a.Content {
		if err := sameExcept(a.Content[i], content[i], targets, grown); err != nil {
			return err
		}
	}
	return nil
}

// offset converts a 1-based line and rune column into a byte offset.
func (f *File) offset(line, col int) (int, error) {
	if line < 1 || line > len(f.lines) {
		return 0, fmt.Errorf("position out of range")
	}
	off := f.lines[line-1]
	for c := 1; c < col; c++ {
		if off >= len(f.data) {
			return 0, fmt.Errorf("position out of range")
		}
		_, size := utf8.DecodeRune(f.data[off:])
		off += size
	}
	return off, nil
}

// extent returns the byte range of scalar n's source text.
func (f *File) extent(n *yaml.Node) (int, int, error) {
	start, err := f.offset(n.Line, n.Column)
	if err != nil {
		return 0, 0, err
	}
	d := f.data
	switch {
	case n.Style&yaml.TaggedStyle != 0 || (start < len(d) && d[start] == '!'):
		return 0, 0, errors.New("tagged scalars are not supported; remove the tag or edit by hand")
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		return 0, 0, errors.New("block scalars (| or >) are not supported as targets")
	case n.Style&yaml.DoubleQuotedStyle != 0:
		if start >= len(d) || d[start] != '"' {
			return 0, 0, errors.New("cannot locate the quoted value")
		}
		for i := start + 1; i < len(d); i++ {
			switch d[i] {
			case '\\':
				i++
			case '"':
				return start, i + 1, nil
			}
		}
	case n.Style&yaml.SingleQuotedStyle != 0:
		if start >= len(d) || d[start] != '\'' {
			return 0, 0, errors.New("cannot locate the quoted value")
		}
		for i := start + 1; i < len(d); i++ {
			if d[i] == '\'' {
				if i+1 < len(d) && d[i+1] == '\'' {
					i++
					continue
				}
				return start, i + 1, nil
			}
		}
	default:
		if n.Value == "" {
			return 0, 0, errors.New("the key has no value; give it one in the file first")
		}
		end := start + len(n.Value)
		if end > len(d) || string(d[start:end]) != n.Value {
			return 0, 0, errors.New("multi-line plain scalars are not supported as targets")
		}
		return start, end, nil
	}
	return 0, 0, errors.New("unterminated quoted value")
}

// render formats value in n's quoting style, quoting a plain value when it
// would otherwise read back as a different type or break the syntax.
func render(n *yaml.Node, value string) string {
	switch {
	case n.Style&yaml.SingleQuotedStyle != 0:
		return "'" + strings.ReplaceAll(value, "'", "''") + "'"
	case n.Style&yaml.DoubleQuotedStyle != 0:
		return doubleQuote(value)
	}
	if plainSafe(value, n.Tag) {
		return value
	}
	return doubleQuote(value)
}

// plainSafe reports whether value written plain reads back as value with tag.
func plainSafe(value, tag string) bool {
	if value == "" || strings.ContainsAny(value, "\n\r\t") || strings.TrimSpace(value) != value {
		return false
	}
	var n yaml.Node
	if err := yaml.Unmarshal([]byte("k: "+value+"\n"), &n); err != nil || len(n.Content) != 1 {
		return false
	}
	m := n.Content[0]
	if m.Kind != yaml.MappingNode || len(m.Content) != 2 {
		return false
	}
	v := m.Content[1]
	if v.Kind != yaml.ScalarNode || v.Value != value || v.Tag != tag || v.Style != 0 {
		return false
	}
	if tag == "!!str" {
		return true
	}
	// A number or boolean must be in canonical form (001 would read as 1).
	var decoded any
	if err := v.Decode(&decoded); err != nil {
		return false
	}
	canon, err := yaml.Marshal(decoded)
	return err == nil && strings.TrimSpace(string(canon)) == value
}

func doubleQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// lookup walks path from a document node; it refuses to go through aliases.
func lookup(root *yaml.Node, path Path) (*yaml.Node, error) {
	n := root
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil, errors.New("empty document")
		}
		n = n.Content[0]
	}
	for i, seg := range path {
		if n.Kind == yaml.AliasNode {
			return nil, fmt.Errorf("%s is an alias (*%s); change the anchored value instead", path[:i], n.Value)
		}
		where := "the document root"
		if i > 0 {
			where = path[:i].String()
		}
		if seg.IsIdx {
			if n.Kind != yaml.SequenceNode {
				return nil, fmt.Errorf("%s is a %s, not a list (segment %s)", where, kindName(n.Kind), seg)
			}
			if seg.Index >= len(n.Content) {
				return nil, fmt.Errorf("%s has %d items, no index %d", where, len(n.Content), seg.Index)
			}
			n = n.Content[seg.Index]
			continue
		}
		if n.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s is a %s, not a mapping (segment %s)", where, kindName(n.Kind), seg)
		}
		var next *yaml.Node
		var keys []string
		for j := 0; j+1 < len(n.Content); j += 2 {
			k := n.Content[j]
			keys = append(keys, k.Value)
			if k.Value == seg.Key {
				next = n.Content[j+1]
				break
			}
		}
		if next == nil {
			if len(keys) > 8 {
				keys = append(keys[:8], "…")
			}
			return nil, fmt.Errorf("segment %q not found in %s (keys: %s)", seg.Key, where, strings.Join(keys, ", "))
		}
		n = next
	}
	return n, nil
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "scalar"
	case yaml.AliasNode:
		return "alias"
	case yaml.DocumentNode:
		return "document"
	}
	return "node"
}

// Package codify writes changes made by hand in the cluster back into the
// plain manifests they came from: for each drifted object, every scalar
// its manifest sets that differs in the live object takes the live value,
// byte-for-byte in place (bump's editor: only those scalars' bytes
// change). It is the break-glass pause's way back to Git (keyless pause
// --codify). It knows nothing of clusters or Git: the caller passes the
// files, the drifted objects and a way to read them live.
package codify

import (
	"errors"
	"fmt"
	"math"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/keyless-cd/keyless/internal/bump"
	"github.com/keyless-cd/keyless/internal/yamlnode"
)

// ErrNothingToCodify is returned (wrapped) when no drifted object could be
// written back.
var ErrNothingToCodify = errors.New("nothing to codify")

// Ref is a drifted object as status.pause.drift names it: Kind/name (in the
// Application's namespace).
type Ref struct {
	Kind, Name string
}

func (r Ref) String() string { return r.Kind + "/" + r.Name }

// ParseDrift reads status.pause.drift lines ("Deployment/web configured
// (by kubectl-edit)") into the objects they name, once each.
func ParseDrift(lines []string) []Ref {
	var out []Ref
	for _, l := range lines {
		ref, _, _ := strings.Cut(strings.TrimSpace(l), " ")
		kind, name, ok := strings.Cut(ref, "/")
		if !ok || kind == "" || name == "" {
			continue
		}
		r := Ref{Kind: kind, Name: name}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// Live reads an object from the cluster: its content as JSON decodes it,
// or nil when it does not exist.
type Live func(apiVersion, kind, name string) (map[string]any, error)

// Change is one scalar written back.
type Change struct {
	File   string `json:"file"`
	Object string `json:"object"`
	Path   string `json:"path"`
	Old    string `json:"old"`
	New    string `json:"new"`
}

// Result is what Edit made.
type Result struct {
	// Files are the new contents of the files that changed.
	Files map[string][]byte
	// Changes are the scalars changed, in file order.
	Changes []Change
	// Skipped says what drift was not written back, and why (a Secret, a
	// field or list entry removed by hand, an object deleted).
	Skipped []string
}

// Limits of what Edit reads.
const (
	// MaxFiles bounds the manifests read.
	MaxFiles = 5000
	// maxDepth bounds the nesting walked.
	maxDepth = 64
)

// Edit writes the live state of drifted into files (manifest path →
// content): each document naming a drifted object (kind, metadata.name)
// gets the live values of the scalars it sets. A Secret is never written
// back (its values would land in Git in plain text), nor a file SOPS
// encrypted. Nothing else in any file changes.
func Edit(files map[string][]byte, drifted []Ref, live Live) (*Result, error) {
	if len(files) > MaxFiles {
		return nil, fmt.Errorf("more than %d manifests", MaxFiles)
	}
	res := &Result{Files: map[string][]byte{}}
	found := map[Ref]bool{}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := editFile(res, name, files[name], drifted, live, found); err != nil {
			return nil, err
		}
	}
	for _, r := range drifted {
		if !found[r] {
			res.Skipped = append(res.Skipped, r.String()+": no manifest in the Application's path names it (rendered by a chart or kustomization? change its source by hand)")
		}
	}
	if len(res.Changes) == 0 {
		return res, fmt.Errorf("%w: %s", ErrNothingToCodify, strings.Join(append([]string{"no scalar a manifest sets differs live"}, res.Skipped...), "; "))
	}
	return res, nil
}

// editFile edits the documents of one file that name drifted objects.
func editFile(res *Result, name string, data []byte, drifted []Ref, live Live, found map[Ref]bool) error {
	switch path.Ext(name) {
	case ".yaml", ".yml", ".json":
	default:
		return nil
	}
	f, err := bump.Parse(name, data)
	if err != nil {
		return nil //nolint:nilerr // not a manifest keyless would render either: skipped, as the render skips it
	}
	for i, doc := range f.Documents() {
		root := doc
		if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
			root = root.Content[0]
		}
		ref := Ref{Kind: yamlnode.Scalar(root, "kind"), Name: yamlnode.Scalar(yamlnode.Get(root, "metadata"), "name")}
		if !slices.Contains(drifted, ref) {
			continue
		}
		found[ref] = true
		switch {
		case ref.Kind == "Secret":
			res.Skipped = append(res.Skipped, ref.String()+": a Secret's values are never written to Git in plain text (change the SOPS-encrypted file by hand)")
			continue
		case yamlnode.Get(root, "sops") != nil:
			res.Skipped = append(res.Skipped, ref.String()+": "+name+" is SOPS-encrypted (change it with sops by hand)")
			continue
		}
		obj, err := live(yamlnode.Scalar(root, "apiVersion"), ref.Kind, ref.Name)
		if err != nil {
			return fmt.Errorf("reading %s live: %w", ref, err)
		}
		if obj == nil {
			res.Skipped = append(res.Skipped, ref.String()+": deleted in the cluster (remove it from "+name+" by hand if that is meant to stay)")
			continue
		}
		w := walker{file: f, doc: i, name: name, ref: ref, res: res}
		if err := w.walk(root, obj, nil, 0); err != nil {
			return err
		}
	}
	if f.Changed() {
		out, err := f.Bytes()
		if err != nil {
			return err
		}
		res.Files[name] = out
	}
	return nil
}

// walker compares one document with its live object.
type walker struct {
	file *bump.File
	doc  int
	name string
	ref  Ref
	res  *Result
}

func (w *walker) skip(p bump.Path, why string) {
	w.res.Skipped = append(w.res.Skipped, fmt.Sprintf("%s %s: %s", w.ref, p, why))
}

// walk sets the scalars under n (at p) that differ from live.
func (w *walker) walk(n *yaml.Node, live any, p bump.Path, depth int) error {
	if depth > maxDepth {
		w.skip(p, "nested too deep")
		return nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		m, ok := live.(map[string]any)
		if !ok {
			w.skip(p, "is no longer a mapping live")
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			lv, ok := m[key]
			sub := append(slices.Clone(p), bump.Segment{Key: key})
			if !ok {
				w.skip(sub, "removed live (codify changes values, it does not remove fields)")
				continue
			}
			if err := w.walk(n.Content[i+1], lv, sub, depth+1); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		l, ok := live.([]any)
		if !ok {
			w.skip(p, "is no longer a list live")
			return nil
		}
		return w.walkList(n, l, p, depth)
	case yaml.ScalarNode:
		return w.scalar(n, live, p)
	case yaml.AliasNode:
		w.skip(p, "is an alias (change the anchored value by hand)")
	}
	return nil
}

// walkList matches a list's items with the live list's: by name when every
// item is a mapping with a name (containers, ports, env), else by index
// when the lengths are equal.
func (w *walker) walkList(n *yaml.Node, live []any, p bump.Path, depth int) error {
	byName := len(n.Content) > 0
	for _, item := range n.Content {
		if yamlnode.Scalar(item, "name") == "" {
			byName = false
		}
	}
	for i, item := range n.Content {
		sub := append(slices.Clone(p), bump.Segment{Index: i, IsIdx: true})
		var lv any
		switch {
		case byName:
			name := yamlnode.Scalar(item, "name")
			idx := slices.IndexFunc(live, func(v any) bool { m, ok := v.(map[string]any); return ok && m["name"] == name })
			if idx < 0 {
				w.skip(sub, fmt.Sprintf("the entry named %q was removed live", name))
				continue
			}
			lv = live[idx]
		case len(live) == len(n.Content):
			lv = live[i]
		default:
			w.skip(p, fmt.Sprintf("has %d entries live, %d in Git (codify changes values, not lists' lengths)", len(live), len(n.Content)))
			return nil
		}
		if err := w.walk(item, lv, sub, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// scalar sets n to the live value when they differ.
func (w *walker) scalar(n *yaml.Node, live any, p bump.Path) error {
	var want any
	if err := n.Decode(&want); err != nil {
		w.skip(p, err.Error())
		return nil
	}
	if same(want, live) {
		return nil
	}
	value, ok := scalarText(live)
	if !ok {
		w.skip(p, "is no longer a single value live")
		return nil
	}
	if value == n.Value {
		return nil // the same text, another type ("80" and 80): nothing to write
	}
	if err := w.file.SetNode(w.doc, n, p.String(), value); err != nil {
		return err
	}
	w.res.Changes = append(w.res.Changes, Change{File: w.name, Object: w.ref.String(), Path: p.String(), Old: n.Value, New: value})
	return nil
}

// same compares a YAML-decoded value with a JSON-decoded one (numbers by value).
func same(a, b any) bool {
	fa, aNum := number(a)
	fb, bNum := number(b)
	if aNum && bNum {
		return fa == fb
	}
	return a == b
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case uint64:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}

// scalarText is how a live scalar is written in YAML.
func scalarText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return strconv.FormatInt(int64(x), 10), true
		}
		return strconv.FormatFloat(x, 'g', -1, 64), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case nil:
		return "null", true
	}
	return "", false
}

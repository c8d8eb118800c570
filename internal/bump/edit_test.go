package bump

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pmezard/go-difflib/difflib"
	yaml "go.yaml.in/yaml/v3"
)

// changedLines returns the lines that differ between a and b ("-old" / "+new").
func changedLines(a, b string) []string {
	var out []string
	m := difflib.NewMatcher(strings.SplitAfter(a, "\n"), strings.SplitAfter(b, "\n"))
	for _, op := range m.GetOpCodes() {
		if op.Tag == 'e' {
			continue
		}
		for _, l := range strings.SplitAfter(a, "\n")[op.I1:op.I2] {
			out = append(out, "-"+strings.TrimRight(l, "\r\n"))
		}
		for _, l := range strings.SplitAfter(b, "\n")[op.J1:op.J2] {
			out = append(out, "+"+strings.TrimRight(l, "\r\n"))
		}
	}
	return out
}

func editFixture(t *testing.T, name string, req Request) (before, after string) {
	t.Helper()
	dir := t.TempDir()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
	req.File = name
	if _, _, err := EditFile(dir, req); err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data), string(out)
}

func sets(t *testing.T, s ...string) []SetValue {
	t.Helper()
	var out []SetValue
	for _, x := range s {
		v, err := ParseSet(x)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

func TestByteForByte(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		req        Request
		want       []string
	}{
		{"helm values: quoted tag, comments kept", "values.yaml", Request{Sets: sets(t, "image.tag=1.5.0")},
			[]string{`-  tag: "1.4.2"`, `+  tag: "1.5.0"`}},
		{"plain int with trailing comment", "values.yaml", Request{Sets: sets(t, "replicaCount=3")},
			[]string{"-replicaCount: 2   # keep at least two", "+replicaCount: 3   # keep at least two"}},
		{"plain string that would read as a number is quoted", "values.yaml", Request{Sets: sets(t, "image.repository=1.0")},
			[]string{"-  repository: registry.example.com/myorg/myapp", `+  repository: "1.0"`}},
		{"flow mapping, single-quoted", "values.yaml", Request{Sets: sets(t, `ingress.annotations."cert-manager.io/cluster-issuer"=staging`)},
			[]string{`-  annotations: {kubernetes.io/ingress.class: nginx, "cert-manager.io/cluster-issuer": 'letsencrypt'}`, `+  annotations: {kubernetes.io/ingress.class: nginx, "cert-manager.io/cluster-issuer": 'staging'}`}},
		{"flow sequence index", "values.yaml", Request{Sets: sets(t, "ingress.hosts[1]=web.example.com")},
			[]string{"-  hosts: [app.example.com, www.example.com]", "+  hosts: [app.example.com, web.example.com]"}},
		{"quoted key", "values.yaml", Request{Sets: sets(t, `"quoted.key".value=new`)},
			[]string{"-  value: old", "+  value: new"}},
		{"anchor source", "values.yaml", Request{Sets: sets(t, "defaults.timeout=60")},
			[]string{"-  timeout: 30", "+  timeout: 60"}},
		{"two values at once", "values.yaml", Request{Sets: sets(t, "image.tag=2.0.0", "replicaCount=4")},
			[]string{"-replicaCount: 2   # keep at least two", "+replicaCount: 4   # keep at least two", `-  tag: "1.4.2"`, `+  tag: "2.0.0"`}},
		{"CRLF line endings", "crlf.yaml", Request{Sets: sets(t, "image.tag=v2")},
			[]string{"-  tag: v1 # crlf", "+  tag: v2 # crlf"}},
		{"kustomization images", "kustomization.yaml", Request{Images: mustImages(t, "registry.example.com/myapp=registry.example.com/myapp:1.1.0")},
			[]string{`-    newTag: "1.0.0"`, `+    newTag: "1.1.0"`}},
		{"kustomization image with newName", "kustomization.yaml", Request{Images: mustImages(t, "registry.example.com/sidecar=registry.example.com/sidecar-fork:v3")},
			[]string{"-    newTag: v2", "+    newTag: v3"}},
		{"kustomization entry added when missing, indented like the others", "kustomization.yaml", Request{Images: mustImages(t, "registry.example.com/new:1.2")},
			[]string{"+  - name: registry.example.com/new", `+    newTag: "1.2"`}},
		{"kustomization without images gets the list", "kustomization-noimages.yaml", Request{Images: mustImages(t, "registry.example.com/app=registry.example.com/app@sha256:"+strings.Repeat("a", 64))},
			[]string{"+images:", "+- name: registry.example.com/app", "+  digest: sha256:" + strings.Repeat("a", 64)}},
		{"deployment containers and init containers, other documents untouched", "deployment.yaml", Request{Images: mustImages(t, "registry.example.com/myapp:1.1.0")},
			[]string{"-          image: registry.example.com/myapp:1.0.0", "+          image: registry.example.com/myapp:1.1.0",
				`-          image: "registry.example.com/myapp:1.0.0"`, `+          image: "registry.example.com/myapp:1.1.0"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, after := editFixture(t, tc.file, tc.req)
			if got := changedLines(before, after); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("changed lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if strings.Contains(before, "\r\n") && strings.Count(after, "\r\n") != strings.Count(before, "\r\n") {
				t.Fatal("CRLF line endings changed")
			}
		})
	}
}

func mustImages(t *testing.T, s ...string) []ImageRef {
	t.Helper()
	var out []ImageRef
	for _, x := range s {
		img, err := ParseImage(x)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, img)
	}
	return out
}

func TestErrorsLeaveTheFileIdentical(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		req        Request
		want       string
	}{
		{"missing segment", "values.yaml", Request{Sets: sets(t, "image.tga=1")}, `segment "tga" not found in image`},
		{"not a scalar", "values.yaml", Request{Sets: sets(t, "image=1")}, "is a mapping, not a scalar"},
		{"index out of range", "values.yaml", Request{Sets: sets(t, "ingress.hosts[5]=x")}, "has 2 items"},
		{"through an alias", "values.yaml", Request{Sets: sets(t, "service.timeout=5")}, `segment "timeout" not found`},
		{"block scalar target", "values.yaml", Request{Sets: sets(t, "config=x")}, "block scalars"},
		{"image not found", "deployment.yaml", Request{Images: mustImages(t, "registry.example.com/other:1")}, "no image named registry.example.com/other"},
		{"valid change then a bad one", "values.yaml", Request{Sets: sets(t, "image.tag=9", "nope.x=1")}, `segment "nope" not found`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			data, _ := os.ReadFile(filepath.Join("testdata", tc.file))
			_ = os.WriteFile(filepath.Join(dir, tc.file), data, 0o644)
			tc.req.File = tc.file
			_, _, err := EditFile(dir, tc.req)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), tc.file) {
				t.Errorf("error %q does not name the file", err)
			}
			after, _ := os.ReadFile(filepath.Join(dir, tc.file))
			if string(after) != string(data) {
				t.Fatal("the file changed although the edit failed")
			}
		})
	}
	// Invalid YAML names file and line.
	dir := t.TempDir()
	_ = os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("a: 1\nb: [2\n"), 0o644)
	if _, _, err := EditFile(dir, Request{File: "bad.yaml", Sets: sets(t, "a=2")}); err == nil || !strings.Contains(err.Error(), "bad.yaml") || !strings.Contains(err.Error(), "line") {
		t.Fatalf("invalid YAML: %v", err)
	}
	for _, bad := range []string{"noequals", "=x", "a..b=1", "a[x]=1"} {
		if _, err := ParseSet(bad); err == nil {
			t.Errorf("ParseSet(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"registry.example.com/app", "UPPER/Case:1", "a=b=c:d:e"} {
		if _, err := ParseImage(bad); err == nil {
			t.Errorf("ParseImage(%q) accepted", bad)
		}
	}
}

func TestNoOpWritesNothing(t *testing.T) {
	dir := t.TempDir()
	data, _ := os.ReadFile("testdata/values.yaml")
	p := filepath.Join(dir, "values.yaml")
	_ = os.WriteFile(p, data, 0o644)
	fi, _ := os.Stat(p)
	changes, changed, err := EditFile(dir, Request{File: "values.yaml", Sets: sets(t, "image.tag=1.4.2")})
	if err != nil || changed || len(changes) != 1 || changes[0].Old != "1.4.2" {
		t.Fatalf("no-op: %v %v %v", changes, changed, err)
	}
	fi2, _ := os.Stat(p)
	if !fi2.ModTime().Equal(fi.ModTime()) {
		t.Fatal("an unchanged file was rewritten")
	}
}

// FuzzSet: for any YAML and path, Set either fails cleanly or changes exactly
// the targeted scalar; every other value reads back the same.
func FuzzSet(f *testing.F) {
	seeds := []struct{ doc, path, value string }{
		{"a: 1\nb: {c: 'x'}\n", "b.c", "y"},
		{"a: [1, 2, \"3\"]\n", "a[2]", "4"},
		{"# c\na:\n  b: &x v\n  c: *x\n", "a.b", "w"},
		{"a: \"q\\\"x\"\n", "a", "n\"ew"},
		{"---\na: 1\n---\na: 2\n", "a", "3"},
		{"a: |\n  x\n", "a", "y"},
		{"a: 'it''s'\n", "a", "it's"},
		{"k: v # c\n", "k", "1.0"},
	}
	for _, s := range seeds {
		f.Add(s.doc, s.path, s.value)
	}
	f.Fuzz(func(t *testing.T, doc, pathStr, value string) {
		path, err := ParsePath(pathStr)
		if err != nil {
			return
		}
		file, err := Parse("f.yaml", []byte(doc))
		if err != nil {
			return
		}
		if err := file.Set(path, value); err != nil {
			if !strings.HasPrefix(err.Error(), "f.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		out, err := file.Bytes()
		if err != nil {
			return // refused: nothing written
		}
		var before, after []any
		decodeAll(t, []byte(doc), &before)
		decodeAll(t, out, &after)
		if len(before) != len(after) {
			t.Fatalf("document count changed")
		}
		for i := range before {
			want := setIn(before[i], path, value)
			if !reflect.DeepEqual(normalize(want), normalize(after[i])) && !reflect.DeepEqual(normalize(before[i]), normalize(after[i])) {
				t.Fatalf("more than the target changed:\nbefore %q\nafter  %q", doc, out)
			}
		}
	})
}

func decodeAll(t *testing.T, data []byte, out *[]any) {
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	for {
		var v any
		if err := dec.Decode(&v); err != nil {
			return
		}
		*out = append(*out, v)
	}
}

// setIn returns a copy of v with path set to value (as a string or as the
// scalar YAML would read it).
func setIn(v any, path Path, value string) any {
	if len(path) == 0 {
		return value
	}
	switch x := v.(type) {
	case map[string]any:
		c := map[string]any{}
		for k, e := range x {
			c[k] = e
		}
		if !path[0].IsIdx {
			if e, ok := c[path[0].Key]; ok {
				c[path[0].Key] = setIn(e, path[1:], value)
			}
		}
		return c
	case []any:
		c := append([]any(nil), x...)
		if path[0].IsIdx && path[0].Index < len(c) {
			c[path[0].Index] = setIn(c[path[0].Index], path[1:], value)
		}
		return c
	}
	return v
}

// normalize turns every scalar into its string form, so that "3" and 3 compare
// equal (bump keeps the style; the test checks values, not types).
func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		c := map[string]any{}
		for k, e := range x {
			c[k] = normalize(e)
		}
		return c
	case []any:
		c := make([]any, len(x))
		for i, e := range x {
			c[i] = normalize(e)
		}
		return c
	case nil:
		return nil
	}
	return strings.TrimSpace(fmtScalar(v))
}

func fmtScalar(v any) string {
	b, _ := yaml.Marshal(v)
	s := strings.TrimSpace(string(b))
	s = strings.Trim(s, `"'`)
	return s
}

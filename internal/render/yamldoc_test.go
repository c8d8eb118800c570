package render

import (
	"strings"
	"testing"
)

func TestSplitDocumentsKeepsLines(t *testing.T) {
	data := "a: 1\n---\n# c\nb: 2\n--- # sep with comment\nc: 3\n---\n"
	docs := splitDocuments([]byte(data))
	if len(docs) != 3 {
		t.Fatalf("got %d docs: %+v", len(docs), docs)
	}
	for i, want := range []int{1, 3, 6} {
		if docs[i].line != want {
			t.Errorf("doc %d starts at line %d, want %d", i, docs[i].line, want)
		}
	}
	if !strings.Contains(string(docs[1].data), "b: 2") || strings.Contains(string(docs[1].data), "---") {
		t.Errorf("doc 1 = %q", docs[1].data)
	}
}

func TestDecodeErrorLineIsFileLine(t *testing.T) {
	data := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n   bad: indent\n"
	_, err := decodeObjects("f.yaml", []byte(data), DefaultLimits.MaxObjects)
	if err == nil {
		t.Fatal("no error")
	}
	if !strings.HasPrefix(err.Error(), "f.yaml:10:") && !strings.HasPrefix(err.Error(), "f.yaml:9:") {
		t.Fatalf("error %q does not point at line 9 or 10 of the file", err)
	}
}

// FuzzDecodeObjects feeds arbitrary bytes to the plain-YAML reader: it must
// never panic, every error must name the file, and every object returned must
// have a kind and a source.
func FuzzDecodeObjects(f *testing.F) {
	for _, seed := range []string{
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
		"---\n---\n",
		"apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: s}\n",
		"a: &a [1,2]\nb: [*a,*a]\n",
		"{\"apiVersion\":\"v1\",\"kind\":\"Pod\"}",
		"- 1\n- 2\n",
		"key: [unclosed\n",
		"\xff\xfe",
		"apiVersion: v1\nkind: ConfigMapList\nitems: [1]\n",
		"--- # c\n...\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := decodeObjects("fuzz.yaml", data, DefaultLimits.MaxObjects)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for _, o := range objs {
			if o.obj == nil || o.obj.Object == nil || !strings.HasPrefix(o.source, "fuzz.yaml:") {
				t.Fatalf("bad object %+v", o)
			}
		}
	})
}

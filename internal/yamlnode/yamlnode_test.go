package yamlnode

import (
	"reflect"
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

func TestAccessors(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte("a: x\nb: [1, 2]\nc: {d: e}\n"), &doc); err != nil {
		t.Fatal(err)
	}
	m := doc.Content[0]
	if Scalar(m, "a") != "x" || Scalar(m, "b") != "" || Scalar(Get(m, "c"), "d") != "e" || Get(m, "zz") != nil || Get(nil, "a") != nil {
		t.Fatal("Get/Scalar")
	}
	if got := Scalars(Get(m, "b")); !reflect.DeepEqual(got, []string{"1", "2"}) || Seq(Get(m, "a")) != nil {
		t.Fatalf("Seq/Scalars: %v", got)
	}
}

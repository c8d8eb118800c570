package render

import (
	"reflect"
	"testing"
)

func TestSetValue(t *testing.T) {
	v := map[string]any{"image": map[string]any{"repository": "r"}, "x": "scalar"}
	SetValue(v, "image.tag", "abc")
	SetValue(v, "x.y", 1)
	SetValue(v, "top", true)
	want := map[string]any{"image": map[string]any{"repository": "r", "tag": "abc"}, "x": map[string]any{"y": 1}, "top": true}
	if !reflect.DeepEqual(v, want) {
		t.Fatalf("got %v", v)
	}
}

package renderproc

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/keyless-cd/keyless/internal/render"
)

// TestOutputIsDecodedAsTheChildWroteIt: every field of a child's answer
// comes through the streaming decoder, and a truncated, unknown or
// oversized answer is an error, not a partial result.
func TestOutputIsDecodedAsTheChildWroteIt(t *testing.T) {
	cm := func(name string) json.RawMessage {
		return json.RawMessage(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"` + name + `"},"data":{"n":"1"}}`)
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(response{Kind: render.KindHelm, Warnings: []string{"w"}, Decrypted: []string{"s.enc.yaml"},
		Objects: []wireObject{{Source: "a.yaml", Object: cm("a")}, {Source: "b.yaml", Object: cm("b")}}}); err != nil {
		t.Fatal(err)
	}
	answer := buf.String()
	o := decodeOutput(strings.NewReader(answer))
	if o.err != nil || o.failure != nil {
		t.Fatalf("decode: %v %v", o.err, o.failure)
	}
	res := o.result
	if res.Kind != render.KindHelm || !reflect.DeepEqual(res.Warnings, []string{"w"}) || !reflect.DeepEqual(res.Decrypted, []string{"s.enc.yaml"}) {
		t.Errorf("got kind %q, warnings %q, decrypted %q", res.Kind, res.Warnings, res.Decrypted)
	}
	if len(res.Objects) != 2 || res.Objects[1].GetName() != "b" || res.Source(res.Objects[1]) != "b.yaml" {
		t.Errorf("got objects %v", res.Objects)
	}

	buf.Reset()
	if err := json.NewEncoder(&buf).Encode(response{Error: toWire(&render.LimitError{Limit: "--max-objects", Detail: "many"})}); err != nil {
		t.Fatal(err)
	}
	if o := decodeOutput(&buf); o.failure == nil || !errors.Is(o.failure.toError(), render.ErrLimit) {
		t.Errorf("error answer: got %+v", o)
	}

	for name, bad := range map[string]string{
		"truncated":     answer[:len(answer)/2],
		"unknown field": `{"kind":"helm","surprise":1}`,
		"not an object": `[]`,
		"no kind":       `{"objects":[{"object":{"apiVersion":"v1"}}]}`,
	} {
		if o := decodeOutput(strings.NewReader(bad)); o.err == nil {
			t.Errorf("%s: decoded %+v", name, o)
		}
	}

	out := newOutputReader(strings.NewReader(answer), int64(len(answer)-1))
	if o := decodeOutput(out); o.err == nil || !out.over() {
		t.Errorf("an answer one byte over the cap: err %v, over %v", o.err, out.over())
	}
	out = newOutputReader(strings.NewReader(answer), int64(len(answer)))
	if o := decodeOutput(out); o.err != nil || out.over() {
		t.Errorf("an answer of exactly the cap: err %v, over %v", o.err, out.over())
	}
}

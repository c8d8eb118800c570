package renderproc

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/keyless-cd/keyless/internal/readset"
	"github.com/keyless-cd/keyless/internal/render"
)

// errOutputFull fails reads past a child's output cap.
var errOutputFull = errors.New("render output over its cap")

// outputReader reads a child's stdout up to limit bytes. Past it, it closes
// full (the parent then kills the child) and fails every read.
type outputReader struct {
	r    io.Reader
	left int64
	full chan struct{}
}

func newOutputReader(r io.Reader, limit int64) *outputReader {
	return &outputReader{r: r, left: limit, full: make(chan struct{})}
}

func (o *outputReader) Read(p []byte) (int, error) {
	if o.over() {
		return 0, errOutputFull
	}
	if int64(len(p)) > o.left+1 {
		p = p[:o.left+1] // one byte past the cap tells it was passed
	}
	n, err := o.r.Read(p)
	if int64(n) > o.left {
		close(o.full)
		return 0, errOutputFull
	}
	o.left -= int64(n)
	return n, err
}

// over reports whether the child wrote more than the cap. Only the reading
// goroutine, or one that waited for it to finish, may call it.
func (o *outputReader) over() bool {
	select {
	case <-o.full:
		return true
	default:
		return false
	}
}

// output is a child's answer: a result, or the error it reported, or why
// its answer could not be read.
type output struct {
	result  *render.Result
	failure *wireError
	err     error
}

// decodeOutput decodes a child's response (see response) as it arrives,
// one object at a time: the parent holds the decoded objects and at most
// one object's JSON, never the whole answer's bytes beside them.
func decodeOutput(r io.Reader) output {
	dec := json.NewDecoder(r)
	var (
		kind               render.Kind
		warnings, decrypts []string
		failure            *wireError
		inputs             []readset.Input
		objs               []*unstructured.Unstructured
		sources            []string
	)
	err := delim(dec, '{')
	for err == nil && dec.More() {
		var key json.Token
		if key, err = dec.Token(); err != nil {
			break
		}
		switch key {
		case "kind":
			err = dec.Decode(&kind)
		case "objects":
			objs, sources, err = decodeObjects(dec)
		case "warnings":
			err = dec.Decode(&warnings)
		case "decrypted":
			err = dec.Decode(&decrypts)
		case "inputs":
			err = dec.Decode(&inputs)
		case "error":
			err = dec.Decode(&failure)
		default:
			err = fmt.Errorf("unknown field %v", key)
		}
	}
	if err == nil {
		err = delim(dec, '}')
	}
	if err != nil {
		return output{err: err}
	}
	if failure != nil {
		return output{failure: failure}
	}
	res := render.NewResult(kind, objs, sources)
	res.Warnings = warnings
	res.Decrypted = decrypts
	if len(inputs) <= readset.MaxInputs {
		res.Inputs = inputs
	}
	return output{result: res}
}

// decodeObjects decodes the response's array of wireObject.
func decodeObjects(dec *json.Decoder) ([]*unstructured.Unstructured, []string, error) {
	if err := delim(dec, '['); err != nil {
		return nil, nil, err
	}
	var (
		objs    []*unstructured.Unstructured
		sources []string
	)
	for i := 0; dec.More(); i++ {
		var o struct {
			Source string                     `json:"source"`
			Object *unstructured.Unstructured `json:"object"`
		}
		if err := dec.Decode(&o); err != nil {
			return nil, nil, fmt.Errorf("object %d: %w", i, err)
		}
		if o.Object == nil {
			return nil, nil, fmt.Errorf("object %d: missing", i)
		}
		objs = append(objs, o.Object)
		sources = append(sources, o.Source)
	}
	return objs, sources, delim(dec, ']')
}

// delim reads the next token, which must be want.
func delim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != want {
		return fmt.Errorf("want %v, got %v", want, tok)
	}
	return nil
}

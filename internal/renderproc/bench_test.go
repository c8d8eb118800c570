package renderproc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/keyless-cd/keyless/internal/render"
)

// BenchmarkRender compares a render in a child process with the same render
// in-process (the floor), for docs/benchmarks.md.
func BenchmarkRender(b *testing.B) {
	opts := render.Options{Root: "../render/testdata", Path: "plain", Namespace: "demo"}
	b.Run("in-process", func(b *testing.B) {
		for b.Loop() {
			if _, err := render.Render(b.Context(), opts); err != nil {
				b.Fatal(err)
			}
		}
	})
	for name, spare := range map[string]bool{"child-process": false, "child-process-spare": true} {
		b.Run(name, func(b *testing.B) {
			r, err := New(Options{Spare: spare})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			for b.Loop() {
				if _, err := r.Render(b.Context(), opts); err != nil {
					b.Fatal(err)
				}
				if spare {
					// A render arrives later than the spare is ready, as in the controller.
					b.StopTimer()
					waitSpare(b, r)
					time.Sleep(200 * time.Millisecond) // its initialisation is done
					b.StartTimer()
				}
			}
		})
	}
}

// BenchmarkDecodeOutput measures the parent's heap while it decodes a
// child's answer near the default --render-max-output (60 MiB of
// ConfigMaps): decoded as a stream (shipped) against the whole answer read
// first and then unmarshalled, and the decoded objects it keeps (the floor:
// every decoder ends holding them). For docs/install.md's sizing.
func BenchmarkDecodeOutput(b *testing.B) {
	answer := largeAnswer(b, 60<<20)
	for name, decode := range map[string]func(io.Reader) (*render.Result, error){
		"stream": func(r io.Reader) (*render.Result, error) {
			o := decodeOutput(newOutputReader(r, DefaultMaxOutputBytes))
			return o.result, o.err
		},
		"read-whole-then-unmarshal": decodeWhole,
	} {
		b.Run(name, func(b *testing.B) {
			var peak, kept uint64
			for b.Loop() {
				runtime.GC()
				base := heapAlloc()
				stop := sampleHeapPeak()
				res, err := decode(bytes.NewReader(answer))
				p := stop()
				if err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				peak, kept = max(peak, p-base), heapAlloc()-base
				runtime.KeepAlive(res)
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-MiB")
			b.ReportMetric(float64(kept)/(1<<20), "kept-MiB")
		})
	}
}

// largeAnswer is a child's answer of about size bytes of ConfigMaps.
func largeAnswer(b *testing.B, size int) []byte {
	b.Helper()
	var objs []wireObject
	for i, n := 0, 0; n < size; i++ {
		o := fmt.Appendf(nil, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm-%d","labels":{"app":"x","n":"%d"}},"data":{"a":"%s","b":"%s","c":"x"}}`,
			i, i, strings.Repeat("x", 600), strings.Repeat("y", 300))
		objs = append(objs, wireObject{Source: "templates/cm.yaml", Object: o})
		n += len(o)
	}
	answer, err := json.Marshal(response{Kind: render.KindPlain, Objects: objs})
	if err != nil {
		b.Fatal(err)
	}
	return answer
}

// decodeWhole decodes an answer as renderproc did before streaming: all of
// it read into memory, unmarshalled with each object's JSON copied, then
// each object decoded.
func decodeWhole(r io.Reader) (*render.Result, error) {
	data, err := io.ReadAll(io.LimitReader(r, DefaultMaxOutputBytes))
	if err != nil {
		return nil, err
	}
	var resp response
	if err := json.Unmarshal(data, &resp); err != nil {
		return nil, err
	}
	objs := make([]*unstructured.Unstructured, 0, len(resp.Objects))
	sources := make([]string, 0, len(resp.Objects))
	for _, o := range resp.Objects {
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(o.Object); err != nil {
			return nil, err
		}
		objs = append(objs, u)
		sources = append(sources, o.Source)
	}
	return render.NewResult(resp.Kind, objs, sources), nil
}

func heapAlloc() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// sampleHeapPeak samples the heap until stop, which returns its peak.
func sampleHeapPeak() (stop func() uint64) {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	done, peak := make(chan struct{}), make(chan uint64)
	go func() {
		var p uint64
		for {
			metrics.Read(s)
			p = max(p, s[0].Value.Uint64())
			select {
			case <-done:
				peak <- p
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	return func() uint64 { close(done); return <-peak }
}

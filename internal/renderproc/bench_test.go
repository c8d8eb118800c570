package renderproc

import (
	"testing"
	"time"

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

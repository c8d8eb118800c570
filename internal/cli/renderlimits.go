package cli

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/keyless-cd/keyless/internal/renderproc"
)

// renderLimitFlags bound the child process every render runs in; the
// controller and the CLI's render, diff, apply and deploy share them.
type renderLimitFlags struct {
	memory    quantityFlag
	timeout   time.Duration
	maxOutput quantityFlag
}

func (f *renderLimitFlags) addFlags(fl *pflag.FlagSet) {
	f.memory = quantityFlag(renderproc.DefaultMemoryLimit)
	f.maxOutput = quantityFlag(renderproc.DefaultMaxOutputBytes)
	fl.Var(&f.memory, "render-memory-limit", "memory one render may use (its own process; e.g. 512Mi, 1Gi)")
	fl.DurationVar(&f.timeout, "render-timeout", renderproc.DefaultTimeout, "wall and CPU time one render may take")
	fl.Var(&f.maxOutput, "render-max-output", "bytes of objects one render may produce (e.g. 64Mi)")
}

// options returns the renderproc options the flags say.
func (f *renderLimitFlags) options() renderproc.Options {
	return renderproc.Options{MemoryLimit: int64(f.memory), Timeout: f.timeout, MaxOutputBytes: int64(f.maxOutput)}
}

// quantityFlag is a byte count written as a Kubernetes quantity (512Mi).
type quantityFlag int64

func (q *quantityFlag) String() string {
	return resource.NewQuantity(int64(*q), resource.BinarySI).String()
}

func (q *quantityFlag) Set(s string) error {
	v, err := resource.ParseQuantity(s)
	if err != nil {
		return fmt.Errorf("want a size such as 512Mi or 1Gi: %w", err)
	}
	if v.Sign() <= 0 {
		return fmt.Errorf("want a positive size, got %s", s)
	}
	*q = quantityFlag(v.Value())
	return nil
}

func (q *quantityFlag) Type() string { return "quantity" }

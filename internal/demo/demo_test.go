package demo_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyless-cd/keyless/internal/cli"
	"github.com/keyless-cd/keyless/internal/demo"
	"github.com/keyless-cd/keyless/internal/localcluster/clustertest"
)

// TestDemo runs `keyless-dev demo`'s steps against real components, so the demo
// cannot rot: every step must pass, with its evidence.
func TestDemo(t *testing.T) {
	var out bytes.Buffer
	dir := t.TempDir()
	rep, err := demo.Run(t.Context(), demo.Options{
		Out: &out, Keyless: cli.InProcess, Assets: clustertest.Assets(), Dir: dir, StepTimeout: time.Minute,
	})
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Steps) != 7 || !rep.OK() {
		t.Fatalf("steps: %+v", rep.Steps)
	}
	text := out.String()
	for _, want := range []string{
		"✓ 1.", "✓ 7.",
		"push to running in", // step 2's latency
		"author Dana Developer <dana@example.com>, committer GitLab CI <ci@example.com>",
		"[skip ci]",
		"reverted to Git",               // step 3
		"ConfigMap myapp-banner pruned", // step 4
		"refused: \"the render produced no objects",
		"Job migrate-1 created", // step 5
		"feature branch token refused",
		"expired (2 h old) token refused",
		"KL010", // step 6
		"cluster-wide",
		"all 7 steps passed",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the demo output lacks %q", want)
		}
	}
}

// watchWriter calls on(text so far) after every write.
type watchWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
	on  func(string)
}

func (w *watchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	n, _ := w.buf.Write(p)
	s := w.buf.String()
	w.mu.Unlock()
	w.on(s)
	return n, nil
}

var filesIn = regexp.MustCompile(`files in (\S+)\)`)

// TestDemoInterruptCleansUp: Ctrl-C during a step stops everything and
// removes the demo's folder.
func TestDemoInterruptCleansUp(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var once sync.Once
	w := &watchWriter{on: func(s string) {
		if strings.Contains(s, "  1. ") {
			once.Do(cancel)
		}
	}}
	_, err := demo.Run(ctx, demo.Options{Out: w, Keyless: cli.InProcess, Assets: clustertest.Assets(), StepTimeout: time.Minute})
	if err == nil {
		t.Fatal("an interrupted demo reported success")
	}
	if !strings.Contains(w.buf.String(), "interrupted: every process is stopped") {
		t.Errorf("no interruption notice:\n%s", w.buf.String())
	}
	m := filesIn.FindStringSubmatch(w.buf.String())
	if m == nil {
		t.Fatalf("no folder named in:\n%s", w.buf.String())
	}
	if _, err := os.Stat(m[1]); !os.IsNotExist(err) {
		t.Errorf("%s still exists after the interrupt: %v", m[1], err)
	}
}

// TestDemoKeep: with Keep, everything stays up after the steps (the printed
// KUBECONFIG works) until the context ends, then it is cleaned up.
func TestDemoKeep(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	kubeconfigLine := regexp.MustCompile(`export KUBECONFIG=(\S+)`)
	probe := errors.New("not probed")
	var once sync.Once
	w := &watchWriter{on: func(s string) {
		if m := kubeconfigLine.FindStringSubmatch(s); m != nil && strings.Contains(s, "press Ctrl-C") {
			once.Do(func() {
				go func() {
					_, _, code := cli.InProcess(ctx, nil, "get", "apps", "-n", "myapp", "--kubeconfig", m[1])
					if code == 0 {
						probe = nil
					} else {
						probe = fmt.Errorf("keyless get apps with the printed KUBECONFIG: exit %d", code)
					}
					cancel()
				}()
			})
		}
	}}
	rep, err := demo.Run(ctx, demo.Options{Out: w, Keyless: cli.InProcess, Assets: clustertest.Assets(), Keep: true, StepTimeout: time.Minute})
	if err != nil || !rep.OK() {
		t.Fatalf("keep: %v\n%s", err, w.buf.String())
	}
	if probe != nil {
		t.Fatal(probe)
	}
	m := filesIn.FindStringSubmatch(w.buf.String())
	if _, err := os.Stat(m[1]); !os.IsNotExist(err) {
		t.Errorf("%s still exists after Ctrl-C: %v", m[1], err)
	}
}

package devcli

import (
	"bufio"
	"context"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/keyless-cd/keyless/internal/cli"
	"github.com/keyless-cd/keyless/internal/localcluster/clustertest"
)

// syncBuffer is a goroutine-safe strings.Builder for a command's stderr.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLocalclusterUp runs the command as a user would: it prints ready with a
// working kubeconfig, serves until interrupted, then stops and names the logs.
func TestLocalclusterUp(t *testing.T) {
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kl.kubeconfig")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	outR, outW := io.Pipe()
	errOut := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"localcluster", "up", "--assets", clustertest.Assets(),
			"--state-dir", filepath.Join(dir, "state"), "--kubeconfig-out", kubeconfig},
			cli.IOStreams{In: strings.NewReader(""), Out: outW, ErrOut: errOut})
		_ = outW.Close()
	}()

	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var ready string
	select {
	case ready = <-lines:
	case code := <-done:
		t.Fatalf("command exited %d before ready; stderr:\n%s", code, errOut.String())
	case <-time.After(2 * time.Minute):
		t.Fatalf("no ready line; stderr:\n%s", errOut.String())
	}
	if ready != "ready: KUBECONFIG="+kubeconfig {
		t.Fatalf("ready line = %q", ready)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := kubernetes.NewForConfigOrDie(cfg).CoreV1().Nodes().List(t.Context(), metav1.ListOptions{})
	if err != nil || len(nodes.Items) != 1 {
		t.Fatalf("nodes through the printed kubeconfig: %v, %v", nodes, err)
	}

	cancel() // what SIGINT does in Main
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d after interrupt; stderr:\n%s", code, errOut.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("command did not stop after interrupt")
	}
	if !strings.Contains(errOut.String(), "logs are in "+filepath.Join(dir, "state", "logs")) {
		t.Errorf("stderr does not say where the logs are:\n%s", errOut.String())
	}
	if _, err := kubernetes.NewForConfigOrDie(cfg).CoreV1().Nodes().List(t.Context(), metav1.ListOptions{}); err == nil {
		t.Error("apiserver still answers after the command stopped")
	}
}

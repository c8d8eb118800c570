package localcluster_test

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyless-cd/keyless/internal/localcluster"
)

// TestStartSurvivesTakenPorts: a port chosen for etcd and one chosen for
// kube-apiserver are taken by another process before the component binds
// them (as happens when several clusters start at once); Start notices the
// bind failure, says so, and starts that component again on other ports.
func TestStartSurvivesTakenPorts(t *testing.T) {
	// The ports are taken by servers answering 200 to everything, like
	// another cluster's etcd would: a health check reaching one must not be
	// mistaken for this cluster's etcd.
	var taken []int
	for range 2 {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"health":"true"}`)) }))
		t.Cleanup(srv.Close)
		taken = append(taken, srv.Listener.Addr().(*net.TCPAddr).Port)
	}
	calls := 0
	restore := localcluster.SetChoosePorts(func(n int) ([]int, error) {
		calls++
		ports, err := localcluster.FreePorts(n)
		if err != nil {
			return nil, err
		}
		switch calls {
		case 1: // etcd's client port
			ports[0] = taken[0]
		case 3: // kube-apiserver's port, after etcd's retry
			ports[0] = taken[1]
		}
		return ports, nil
	})
	defer restore()

	var progress bytes.Buffer
	dir := t.TempDir()
	c, err := localcluster.Start(t.Context(), localcluster.Options{StateDir: dir, Progress: &progress, ReadyTimeout: time.Minute})
	if err != nil {
		t.Fatalf("start with taken ports: %v\n%s", err, progress.String())
	}
	defer c.Stop()
	if strings.HasSuffix(c.Server, ":"+strconv.Itoa(taken[1])) {
		t.Fatalf("the apiserver claims the taken port: %s", c.Server)
	}
	for _, want := range []string{"etcd's port was taken", "kube-apiserver's port was taken"} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress does not say %q:\n%s", want, progress.String())
		}
	}
	for _, name := range []string{"etcd.log", "kube-apiserver.log"} {
		b, err := os.ReadFile(filepath.Join(dir, "logs", name))
		if err != nil || !bytes.Contains(b, []byte("address already in use")) {
			t.Errorf("%s does not show the first attempt's bind failure (%v)", name, err)
		}
	}
	if calls != 4 {
		t.Errorf("ports chosen %d times, want 4 (two attempts each for etcd and kube-apiserver)", calls)
	}
}

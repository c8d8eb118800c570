package engine

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestWaitDeploymentAvailable(t *testing.T) {
	e := newEngine(t)
	ns := newNamespace(t)
	var mu sync.Mutex
	var progress []string
	res, err := e.Apply(t.Context(), renderFiles(t, map[string]string{
		"d.yaml": deployment("web", "registry.example.com/web:1.0", ""),
		"s.yaml": service("web"),
	}), ApplyOptions{Namespace: ns, Name: "web", Wait: time.Minute, Progress: func(s ObjectStatus) {
		mu.Lock()
		progress = append(progress, s.String())
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range res.Health {
		if h.Status != "Current" {
			t.Errorf("%s after wait", h)
		}
	}
	if len(res.Health) != 2 || len(progress) == 0 {
		t.Errorf("health %v, progress %v", res.Health, progress)
	}
}

func TestWaitReportsWhyADeploymentFails(t *testing.T) {
	e := newEngine(t)
	ns := newNamespace(t)
	unschedulable := "  progressDeadlineSeconds: 2\n"
	start := time.Now()
	objs := renderFiles(t, map[string]string{"d.yaml": strings.Replace(
		deployment("stuck", "registry.example.com/web:1.0", unschedulable),
		"    spec:\n", "    spec:\n      nodeSelector: {disktype: does-not-exist}\n", 1)})
	_, err := e.Apply(t.Context(), objs, ApplyOptions{Namespace: ns, Name: "stuck", Wait: 90 * time.Second})
	if !errors.Is(err, ErrNotReady) {
		t.Fatalf("got %v, want ErrNotReady", err)
	}
	if time.Since(start) > 60*time.Second {
		t.Errorf("failure reported after %s; it should come at the progress deadline, not the timeout", time.Since(start))
	}
	for _, want := range []string{"Deployment/stuck", "Failed", "deadline"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestWaitTimeoutNamesEachObject(t *testing.T) {
	e := newEngine(t)
	ns := newNamespace(t)
	objs := renderFiles(t, map[string]string{"d.yaml": strings.Replace(
		deployment("pending", "registry.example.com/web:1.0", ""),
		"    spec:\n", "    spec:\n      nodeSelector: {disktype: does-not-exist}\n", 1)})
	_, err := e.Apply(t.Context(), objs, ApplyOptions{Namespace: ns, Name: "pending", Wait: 3 * time.Second})
	if !errors.Is(err, ErrNotReady) {
		t.Fatalf("got %v, want ErrNotReady", err)
	}
	for _, want := range []string{"Deployment/pending", "InProgress", "after 3s"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

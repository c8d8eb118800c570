package localcluster

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"syscall"
)

// Errors of Kill and Revive.
var (
	// ErrNoComponent: the cluster did not start a component of that name.
	ErrNoComponent = errors.New("no such component")
	// ErrStopped: the cluster was stopped.
	ErrStopped = errors.New("the cluster is stopped")
)

// component returns the running process of component name.
func (c *Cluster) component(name string) (*process, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.procs {
		if p.name == name {
			return p, nil
		}
	}
	return nil, fmt.Errorf("%w %q (the cluster runs %v)", ErrNoComponent, name, c.names())
}

func (c *Cluster) names() []string {
	out := make([]string, 0, len(c.procs))
	for _, p := range c.procs {
		out = append(out, p.name)
	}
	return out
}

// Kill ends component name ("etcd", "kube-apiserver", …) with SIGKILL, as a
// crash or an OOM kill would, and waits until it has exited. Revive starts
// it again. Fault tests use the pair.
func (c *Cluster) Kill(name string) error {
	p, err := c.component(name)
	if err != nil {
		return err
	}
	if !p.exited() {
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.done
	}
	return nil
}

// Revive starts component name again with the arguments, ports and data
// it had, and waits until it and every component that answers a readiness
// check does again (kube-apiserver's /readyz after an etcd restart, say),
// or ctx ends. A component still running is left alone.
func (c *Cluster) Revive(ctx context.Context, name string) error {
	c.mu.Lock()
	var old *process
	for _, p := range c.procs {
		if p.name == name {
			old = p
		}
	}
	switch {
	case c.stopped:
		c.mu.Unlock()
		return ErrStopped
	case old == nil:
		names := c.names()
		c.mu.Unlock()
		return fmt.Errorf("%w %q (the cluster runs %v)", ErrNoComponent, name, names)
	case !old.exited():
		c.mu.Unlock()
		return nil
	}
	// Started under the lock: two Revives cannot both start one, and Stop
	// (which takes the lock) sees the new process.
	p, err := startProcess(old.name, old.cmd.Path, old.cmd.Args[1:], filepath.Dir(old.logPath))
	if err != nil {
		c.mu.Unlock()
		return err
	}
	p.ready = old.ready
	for i, q := range c.procs {
		if q == old {
			c.procs[i] = p
		}
	}
	procs := slices.Clone(c.procs)
	c.mu.Unlock()
	for _, q := range procs {
		if q.ready == nil {
			continue
		}
		if err := waitFor(ctx, q, q.name+" ready after "+name+" restarted", q.ready); err != nil {
			return err
		}
	}
	return nil
}

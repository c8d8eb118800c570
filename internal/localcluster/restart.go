package localcluster

import (
	"context"
	"errors"
	"fmt"
	"syscall"
)

// ErrNoComponent is returned for a component name the cluster did not start.
var ErrNoComponent = errors.New("no such component")

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
// it had, and waits until it answers (kube-apiserver's /readyz, etcd's
// /health; the others once started) or ctx ends. A component still
// running is left alone.
func (c *Cluster) Revive(ctx context.Context, name string) error {
	old, err := c.component(name)
	if err != nil {
		return err
	}
	if !old.exited() {
		return nil
	}
	p, err := startProcess(old.name, old.bin, old.args, old.logDir)
	if err != nil {
		return err
	}
	p.ready = old.ready
	c.mu.Lock()
	for i, q := range c.procs {
		if q == old {
			c.procs[i] = p
		}
	}
	c.mu.Unlock()
	if p.ready == nil {
		return nil
	}
	return waitFor(ctx, p, name+" ready again", p.ready)
}

package localcluster

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// portAttempts is how often a component whose port was taken between
// choosing and binding it is started again on new ports.
const portAttempts = 3

// choosePorts finds free ports; tests replace it to force a conflict.
var choosePorts = freePorts

// freePorts finds n distinct free loopback ports. They are released before
// the component binds them, so another process could take one in between; to
// make that rare they are chosen below the kernel's ephemeral range, where
// outgoing connections (etcd clients, watches of other clusters running at
// the same time) never get their source port, and a component that still
// loses the race is restarted on new ports (see bindConflict).
func freePorts(n int) ([]int, error) {
	lo, hi := quietRange()
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		addr := "127.0.0.1:0"
		if hi > lo && tries < 200 {
			addr = "127.0.0.1:" + strconv.Itoa(lo+rand.IntN(hi-lo)) //nolint:gosec // not security sensitive
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			if addr == "127.0.0.1:0" {
				return nil, fmt.Errorf("finding a free port: %w", err)
			}
			continue
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// quietRange is a port range below the ephemeral one
// (/proc/sys/net/ipv4/ip_local_port_range), or an empty range when there is
// no room below it.
func quietRange() (lo, hi int) {
	ephemeral := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				ephemeral = v
			}
		}
	}
	lo, hi = 20000, ephemeral-1
	if hi-lo < 1000 {
		return 0, 0
	}
	return lo, hi
}

// startOnFreePorts chooses n ports and runs launch (start a component on
// them and wait until it is ready). A component that exited because one of
// its ports was taken meanwhile is stopped, retried is called, and launch
// runs again on new ports, up to portAttempts times.
func (c *Cluster) startOnFreePorts(n int, retried func() error, launch func(ports []int) (*process, error)) error {
	for attempt := 1; ; attempt++ {
		ports, err := choosePorts(n)
		if err != nil {
			return err
		}
		p, err := launch(ports)
		if err == nil {
			return nil
		}
		if p == nil || attempt == portAttempts || !p.bindConflict() {
			return err
		}
		c.drop(p)
		if err := retried(); err != nil {
			return err
		}
	}
}

// bindConflict reports whether p exited because its port was taken.
func (p *process) bindConflict() bool {
	return p.exited() && strings.Contains(tail(p.logPath, 30), "address already in use")
}

// drop stops p and forgets it, before the component is started again.
func (c *Cluster) drop(p *process) {
	p.stop(stopGrace)
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, q := range c.procs {
		if q == p {
			c.procs = append(c.procs[:i], c.procs[i+1:]...)
			break
		}
	}
}

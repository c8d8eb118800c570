//go:build !linux

package renderproc

import "syscall"

// childProcAttr puts a child in its own process group. Outside Linux there
// is no Pdeathsig: a child outlives a parent killed with SIGKILL until it
// ends on its own (its deadline, or its closed stdin).
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// maxRSSUnit is the unit of getrusage's ru_maxrss here, in bytes.
const maxRSSUnit = 1

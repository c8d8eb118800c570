package localcluster

import "syscall"

// childProcAttr puts a child in its own process group and, on Linux, has
// the kernel kill it when this process dies (Pdeathsig).
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

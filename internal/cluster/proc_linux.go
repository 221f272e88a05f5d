package cluster

import "syscall"

// procAttr puts a DC in its own process group (Ctrl-C in a terminal
// reaches only the parent, which stops the DCs in order) and has the
// kernel kill it if the parent dies first, so a killed test, bench or
// `superapp cluster` leaves no DC behind.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

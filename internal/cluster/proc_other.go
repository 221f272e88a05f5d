//go:build !linux

package cluster

import "syscall"

// procAttr puts a DC in its own process group: Ctrl-C in a terminal
// reaches only the parent, which stops the DCs in order.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

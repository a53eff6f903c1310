//go:build unix

package service

import (
	"os/exec"
	"syscall"
)

// setProcessGroup starts the process in a group of its own, so stopping it
// reaches every child it started, and a Ctrl-C in the terminal goes to
// resctl, which stops it in order.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

func signalGroup(cmd *exec.Cmd, sig syscall.Signal) error {
	if cmd.Process == nil {
		return nil
	}
	return syscall.Kill(-cmd.Process.Pid, sig)
}

//go:build unix

package service

import (
	"os/exec"
	"syscall"
)

// setProcessGroup starts the process in a group of its own, so stopping it
// reaches every child it started, and a Ctrl-C in the terminal goes to
// resctl, which stops it in order. The parent-death signal (Linux) ends it
// when resctl dies without stopping it, even by SIGKILL: a supervisor gets
// a signal it can act on (it stops the group it leads), a bare command
// SIGKILL.
func setProcessGroup(cmd *exec.Cmd, supervised bool) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	death := syscall.SIGKILL
	if supervised {
		death = syscall.SIGTERM
	}
	setDeathSignal(cmd.SysProcAttr, death)
}

func signalGroup(cmd *exec.Cmd, sig syscall.Signal) error {
	if cmd.Process == nil {
		return nil
	}
	return syscall.Kill(-cmd.Process.Pid, sig)
}

func killGroup(pgid int) error { return syscall.Kill(-pgid, syscall.SIGKILL) }

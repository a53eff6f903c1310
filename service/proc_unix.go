//go:build unix

package service

import (
	"fmt"
	"os"
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

// checkPrivate refuses a directory of process records that another user
// could have made or can write to: /tmp is shared, and a record planted
// there would have resctl stop a process group that is not its own.
func checkPrivate(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.IsDir():
		return fmt.Errorf("%s is not a directory", path)
	case !ok || int(st.Uid) != os.Getuid():
		return fmt.Errorf("%s is not owned by this user", path)
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("%s can be written by other users", path)
	}
	return nil
}

// pauseGroup freezes the process group with SIGSTOP, all but its leader
// when that is a supervisor: a frozen supervisor could not act on
// resctl's death, and the group would stay frozen for good.
func pauseGroup(cmd *exec.Cmd, supervised bool) error {
	if cmd.Process == nil {
		return nil
	}
	group := cmd.Process.Pid
	if !supervised {
		if err := syscall.Kill(-group, syscall.SIGSTOP); err != nil {
			return err
		}
		waitStopped(group, 0)
		return nil
	}
	procs, err := listProcs()
	if err != nil {
		return fmt.Errorf("pause a supervised process: %w", err)
	}
	for _, p := range procs {
		if p.pgrp == group && p.pid != group && !p.zombie {
			_ = syscall.Kill(p.pid, syscall.SIGSTOP)
		}
	}
	waitStopped(group, group)
	return nil
}

// continueGroup continues every process of the group.
func continueGroup(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	return syscall.Kill(-cmd.Process.Pid, syscall.SIGCONT)
}

//go:build !unix

package service

import (
	"errors"
	"os/exec"
	"syscall"
)

func setProcessGroup(*exec.Cmd, bool) {}

// checkPrivate has nothing to check where processes are not recorded.
func checkPrivate(string) error { return nil }

func signalGroup(cmd *exec.Cmd, _ syscall.Signal) error {
	if cmd.Process == nil {
		return nil
	}
	return cmd.Process.Kill()
}

func killGroup(int) error { return errNoProcRecords }

func pauseGroup(*exec.Cmd, bool) error { return errNoPause }

func continueGroup(*exec.Cmd) error { return nil }

var errNoPause = errors.New("pausing a process needs SIGSTOP, which this system does not have")

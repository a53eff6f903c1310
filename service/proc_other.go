//go:build !unix

package service

import (
	"os/exec"
	"syscall"
)

func setProcessGroup(*exec.Cmd, bool) {}

func signalGroup(cmd *exec.Cmd, _ syscall.Signal) error {
	if cmd.Process == nil {
		return nil
	}
	return cmd.Process.Kill()
}

func killGroup(int) error { return errNoProcRecords }

//go:build !unix

package service

import (
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

//go:build !linux

package service

import (
	"os/exec"
	"syscall"
)

func setDeathSignal(*syscall.SysProcAttr, syscall.Signal) {}

func startCmd(cmd *exec.Cmd) error { return cmd.Start() }

func setSubreaper() error { return nil }

type procInfo struct {
	pid, ppid, pgrp int
	start           uint64
	zombie, stopped bool
}

func readProc(int) (procInfo, error) { return procInfo{}, errNoProcRecords }

func listProcs() ([]procInfo, error) { return nil, errNoProcRecords }

// waitStopped cannot look without /proc: SIGSTOP takes effect when the
// processes are next scheduled.
func waitStopped(int, int) {}

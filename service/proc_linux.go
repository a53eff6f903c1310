package service

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func setDeathSignal(attr *syscall.SysProcAttr, sig syscall.Signal) { attr.Pdeathsig = sig }

// A child's parent-death signal fires when the thread that forked it
// exits, not when resctl does, and the Go runtime ends a thread whenever a
// goroutine that locked it returns without unlocking it — netem's
// namespace dials do that on purpose. So every child is started from one
// goroutine locked to its thread for good: that thread lives exactly as
// long as resctl.
type spawnRequest struct {
	cmd  *exec.Cmd
	done chan<- error
}

var spawnQueue = sync.OnceValue(func() chan<- spawnRequest {
	q := make(chan spawnRequest)
	go spawnLoop(q)
	return q
})

func spawnLoop(q <-chan spawnRequest) {
	runtime.LockOSThread() // never unlocked: see spawnRequest
	for r := range q {
		r.done <- r.cmd.Start()
	}
}

// startCmd starts cmd on the spawning thread.
func startCmd(cmd *exec.Cmd) error {
	done := make(chan error, 1)
	spawnQueue() <- spawnRequest{cmd: cmd, done: done}
	return <-done
}

// setSubreaper makes the calling process the one its orphaned descendants
// are reparented to, so a supervisor can still find and stop a grandchild
// whose own parent has died.
func setSubreaper() error {
	const prSetChildSubreaper = 36
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		return fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %w", errno)
	}
	return nil
}

// procInfo is what /proc/PID/stat says of a process.
type procInfo struct {
	pid, ppid, pgrp int
	// start is the process's start time in clock ticks since boot: with
	// the pid it names one process, whatever pids are reused later.
	start  uint64
	zombie bool
	// stopped: frozen by SIGSTOP (state T).
	stopped bool
}

func readProc(pid int) (procInfo, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procInfo{}, err
	}
	// The command name, in parentheses, may hold spaces and parentheses;
	// the fields after its last ')' start with the state (field 3).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procInfo{}, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return procInfo{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	p := procInfo{pid: pid, zombie: f[0] == "Z" || f[0] == "X", stopped: f[0] == "T"}
	p.ppid, err = strconv.Atoi(f[1])
	if err == nil {
		p.pgrp, err = strconv.Atoi(f[2])
	}
	if err == nil {
		p.start, err = strconv.ParseUint(f[19], 10, 64)
	}
	if err != nil {
		return procInfo{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return p, nil
}

// listProcs reads every process the kernel shows; processes that exit
// while it reads are left out.
func listProcs() ([]procInfo, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []procInfo
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, err := readProc(pid); err == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// waitStopped waits until every process of group but skip is stopped or
// gone: SIGSTOP is delivered when each is next scheduled, and a pause is
// meant to have begun when Pause returns. It gives up after a bounded
// number of looks, a frozen process being the kernel's business.
func waitStopped(group, skip int) {
	for range 500 {
		procs, err := listProcs()
		if err != nil {
			return
		}
		running := false
		for _, p := range procs {
			if p.pgrp == group && p.pid != skip && !p.zombie && !p.stopped {
				running = true
				break
			}
		}
		if !running {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

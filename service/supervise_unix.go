//go:build unix

package service

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

// Supervise is the body of the small process resctl puts between itself
// and each process it starts when Spec.Supervisor is set: args are the
// stop signal's number, the grace period and the command line (see
// supervisorArgs). It leads the process group, runs the command in it and
// exits as the command does.
//
// It exists for resctl's death, SIGKILL included: the parent-death signal
// reaches it (and the command directly), but only a process that is still
// alive can stop the grandchildren a shell command started. So on resctl's
// death it sends the stop signal to the group, waits up to the grace
// period, then kills whatever is left of the group and every descendant
// that left the group (as subreaper, it inherits their orphans).
// Signals from resctl's own orderly stop also reach it through the group;
// it ignores them and waits for the command to exit.
func Supervise(args []string, stderr io.Writer) int {
	if len(args) < 3 {
		fmt.Fprintln(stderr, "usage: supervise SIGNAL GRACE COMMAND [ARG...]")
		return 2
	}
	n, err1 := strconv.Atoi(args[0])
	grace, err2 := time.ParseDuration(args[1])
	if err1 != nil || err2 != nil {
		fmt.Fprintf(stderr, "supervise: bad signal %q or grace %q\n", args[0], args[1])
		return 2
	}
	stopSig := syscall.Signal(n)
	// The command's own parent-death signal follows this thread, which
	// the main goroutine keeps until the process exits.
	runtime.LockOSThread()
	parent := os.Getppid()
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT)
	if err := setSubreaper(); err != nil {
		fmt.Fprintf(stderr, "supervise: %v\n", err)
	}
	cmd := exec.Command(args[2], args[3:]...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	setDeathSignal(cmd.SysProcAttr, syscall.SIGKILL)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "supervise: %v\n", err)
		return 127
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	for {
		select {
		case <-exited:
			return exitCode(cmd.ProcessState)
		case <-sigs:
			if os.Getppid() == parent {
				continue // resctl's orderly stop: the command got it too
			}
			// A SIGKILL sent to the group would end the supervisor too,
			// before it found what left the group: killDescendants sends
			// it to every process but itself.
			if stopSig != syscall.SIGKILL {
				_ = syscall.Kill(-syscall.Getpgrp(), stopSig)
				// A command resctl paused would hold the signal
				// until continued.
				_ = syscall.Kill(-syscall.Getpgrp(), syscall.SIGCONT)
				t := time.NewTimer(grace)
				select {
				case <-exited:
				case <-t.C:
				}
				t.Stop()
			}
			killDescendants()
			return 1
		}
	}
}

func exitCode(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// killDescendants kills, with SIGKILL, every other process of the
// supervisor's group and every process reparented to it, until none is
// left (a bounded number of rounds: a killed parent's orphans arrive a
// moment later).
func killDescendants() {
	self, group := os.Getpid(), syscall.Getpgrp()
	for range 100 {
		procs, err := listProcs()
		if err != nil {
			_ = syscall.Kill(-group, syscall.SIGKILL) // the supervisor too: nothing better is left
			return
		}
		n := 0
		for _, p := range procs {
			if p.pid != self && !p.zombie && (p.pgrp == group || p.ppid == self) {
				_ = syscall.Kill(p.pid, syscall.SIGKILL)
				n++
			}
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
		if n == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

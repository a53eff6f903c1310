package service

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func init() {
	platformHelpers["owner-pause"] = ownerPauseHelper
}

// freeAddr is a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// stateLog collects an instance's states in order.
type stateLog struct {
	mu     sync.Mutex
	states []State
}

func (l *stateLog) add(s State) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.states = append(l.states, s)
}

func (l *stateLog) get() []State {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.states)
}

func procState(t *testing.T, pid int) procInfo {
	t.Helper()
	p, err := readProc(pid)
	if err != nil {
		t.Fatalf("process %d: %v", pid, err)
	}
	return p
}

func TestInstance_KillAndStartAgain(t *testing.T) {
	addr := freeAddr(t)
	in := NewInstance(Spec{Name: "svc", Command: []string{self(t)}, Env: map[string]string{"SERVICE_HELPER": "listen-fixed", "ADDR": addr},
		ReadyTCP: addr, LogDir: t.TempDir()})
	var log stateLog
	in.OnState(log.add)
	if err := in.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer in.Stop()
	first := in.Process().Pid()
	if err := in.Kill(syscall.SIGKILL, 0); err != nil {
		t.Fatal(err)
	}
	if in.State() != StateDown || in.Process() != nil {
		t.Fatalf("after kill: state %s", in.State())
	}
	waitGone(t, first)
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after the kill", addr)
	}
	if err := in.Pause(); err == nil {
		t.Error("Pause of a process that is down: no error")
	}
	if err := in.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if in.Process().Pid() == first {
		t.Error("started again with the same pid")
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("started again, but %s refuses: %v", addr, err)
	}
	c.Close()
	if in.Restarts() != 1 || len(in.ReadyTimes()) != 2 {
		t.Errorf("restarts %d, ready times %v", in.Restarts(), in.ReadyTimes())
	}
	want := []State{StateStarting, StateReady, StateDown, StateStarting, StateReady}
	if got := log.get(); !slices.Equal(got, want) {
		t.Errorf("states %v, want %v", got, want)
	}
	if err := in.Stop(); err != nil {
		t.Error(err)
	}
	if err := in.Start(context.Background()); err == nil {
		t.Error("Start after Stop: no error")
	}
}

// TestInstance_ExitByItself: a process that dies on its own is down.
func TestInstance_ExitByItself(t *testing.T) {
	addr := freeAddr(t)
	in := NewInstance(Spec{Name: "svc", Command: []string{self(t)}, Env: map[string]string{"SERVICE_HELPER": "listen-fixed", "ADDR": addr}, ReadyTCP: addr})
	down := make(chan struct{})
	in.OnState(func(s State) {
		if s == StateDown {
			close(down)
		}
	})
	if err := in.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer in.Stop()
	_ = syscall.Kill(in.Process().Pid(), syscall.SIGKILL) // not through the instance
	<-down
}

func TestInstance_GracefulKillWaitsForExit(t *testing.T) {
	in := NewInstance(Spec{Name: "svc", Command: []string{self(t)}, Env: map[string]string{"SERVICE_HELPER": "serve"},
		ReadyLine: regexp.MustCompile(`listening on (http://\S+)`)})
	if err := in.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer in.Stop()
	p := in.Process()
	// The helper exits 0 on SIGTERM: the grace is never used up, and
	// the exit is its own, not SIGKILL's.
	if err := in.Kill(syscall.SIGTERM, time.Hour); err != nil {
		t.Fatal(err)
	}
	if ps := p.cmd.ProcessState; ps == nil || ps.ExitCode() != 0 {
		t.Errorf("exit after SIGTERM: %v, want exit status 0", ps)
	}
}

// TestInstance_PauseAnswersNothingUntilContinued freezes a server: the
// kernel says it is stopped and a request sent meanwhile is answered
// only once it is continued.
func TestInstance_PauseAnswersNothingUntilContinued(t *testing.T) {
	for _, supervised := range []bool{false, true} {
		t.Run(fmt.Sprintf("supervised=%v", supervised), func(t *testing.T) {
			spec := Spec{Name: "svc", Command: []string{self(t)}, Env: map[string]string{"SERVICE_HELPER": "serve"},
				ReadyLine: regexp.MustCompile(`listening on (http://\S+)`)}
			if supervised {
				spec.Supervisor = []string{self(t), "supervise"}
			}
			in := NewInstance(spec)
			if err := in.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			defer in.Stop()
			p := in.Process()
			server := p.Pid()
			if supervised {
				server = childOf(t, p.Pid())
			}
			if err := in.Pause(); err != nil {
				t.Fatal(err)
			}
			if !procState(t, server).stopped {
				t.Fatal("paused, but the server is not stopped")
			}
			if supervised && procState(t, p.Pid()).stopped {
				t.Fatal("the supervisor was stopped too: it could not act on resctl's death")
			}
			answered := make(chan error, 1)
			go func() {
				resp, err := http.Get(p.Match())
				if err == nil {
					resp.Body.Close()
				}
				answered <- err
			}()
			// The request has had time to be answered by a running
			// server; a slow machine only makes this check weaker.
			select {
			case err := <-answered:
				t.Fatalf("a paused server answered: %v", err)
			case <-time.After(200 * time.Millisecond):
			}
			if err := in.Continue(); err != nil {
				t.Fatal(err)
			}
			if err := <-answered; err != nil {
				t.Fatalf("after continue: %v", err)
			}
			if procState(t, server).stopped || in.State() != StateReady {
				t.Errorf("continued, but stopped=%v state=%s", procState(t, server).stopped, in.State())
			}
		})
	}
}

// TestInstance_StopWhilePaused: stopping a paused process (an interrupt
// during a pause) ends it at once, without waiting out the grace period.
func TestInstance_StopWhilePaused(t *testing.T) {
	in := NewInstance(Spec{Name: "svc", Command: []string{self(t)}, Env: map[string]string{"SERVICE_HELPER": "serve"},
		ReadyLine: regexp.MustCompile(`listening on (http://\S+)`), StopGrace: time.Hour})
	if err := in.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	pid := in.Process().Pid()
	if err := in.Pause(); err != nil {
		t.Fatal(err)
	}
	// A stop that waited out the grace would not return: SIGTERM is
	// held by a stopped process until it is continued.
	if err := in.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	waitGone(t, pid)
}

func childOf(t *testing.T, parent int) int {
	t.Helper()
	for _, p := range listProcsOrFail(t) {
		if p.ppid == parent {
			return p.pid
		}
	}
	t.Fatalf("process %d has no child", parent)
	return 0
}

// ownerPauseHelper plays resctl: it starts a server (supervised if
// $SUPERVISED is set), pauses it, prints "paused PID" with the pid of the
// started process and waits to be killed.
func ownerPauseHelper() {
	self, _ := os.Executable()
	spec := Spec{Name: "child", Command: []string{self}, Env: map[string]string{"SERVICE_HELPER": "serve"},
		ReadyLine: regexp.MustCompile(`listening on (http://\S+)`)}
	if os.Getenv("SUPERVISED") != "" {
		spec.Supervisor = []string{self, "supervise"}
	}
	in := NewInstance(spec)
	if err := in.Start(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	if err := in.Pause(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	fmt.Printf("paused %d\n", in.Process().Pid())
	time.Sleep(time.Hour)
}

// TestInstance_OwnerKilledDuringPause SIGKILLs "resctl" while its service
// is paused: the service ends with it, never frozen for good.
func TestInstance_OwnerKilledDuringPause(t *testing.T) {
	for _, supervised := range []bool{false, true} {
		t.Run(fmt.Sprintf("supervised=%v", supervised), func(t *testing.T) {
			owner, line := startOwner(t, supervised, "SERVICE_HELPER=owner-pause")
			var started int
			if _, err := fmt.Sscanf(strings.TrimSpace(line), "paused %d", &started); err != nil {
				t.Fatalf("owner said %q: %v", line, err)
			}
			pids := map[string]int{"service": started}
			if supervised {
				pids = map[string]int{"supervisor": started, "service": childOf(t, started)}
			}
			for _, pid := range pids {
				defer syscall.Kill(pid, syscall.SIGKILL)
			}
			if err := owner.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = owner.Wait()
			waitAllGone(t, pids)
		})
	}
}

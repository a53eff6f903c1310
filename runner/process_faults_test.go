package runner

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/resctl/resctl/scenario"
	"github.com/resctl/resctl/service"
)

// demoOptions runs the demo target as a process of its own (this test
// binary as `resctl demo-target`), as resctl run does.
func demoOptions(t *testing.T) Options {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Options{DemoCommand: []string{self, demoTargetArg}, LogDir: t.TempDir()}
}

// The process-kill example: the demo target killed with SIGKILL mid-phase
// and started again; its SLAs time its return from the run's own record.
func TestExample_ProcessKill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an example scenario: 13 s of real load")
	}
	s, err := scenario.ReadFile("../testdata/scenarios/process-kill.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(context.Background(), s, demoOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, sla := range r.SLAs {
		if !sla.Passed {
			t.Errorf("SLA %q failed: observed %s %s", sla.Name, sla.Observed, sla.Error)
		}
	}
	if len(r.Processes) != 1 {
		t.Fatalf("processes = %+v, want the target", r.Processes)
	}
	p := r.Processes[0]
	if p.Name != "target" || p.Restarts != 1 || len(p.ReadyS) != 2 || p.State != "ready" || p.NotReadyS <= 0 {
		t.Errorf("target = %+v, want one restart, two readiness times, ready at the end, some time not ready", p)
	}
	var transitions []string
	for _, e := range r.Events {
		if e.Source == "process" && e.Kind == "transition" {
			transitions = append(transitions, e.To)
		}
	}
	if got := strings.Join(transitions, " "); got != "down starting ready" {
		t.Errorf("target's transitions: %q, want down starting ready", got)
	}
}

// An interrupt while a process is paused: the run ends at once, the
// paused process is continued and stopped — not left frozen — and the
// report says it was paused.
func TestRun_InterruptDuringPause(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a scenario")
	}
	s := mustParse(t, `
name: pause-interrupted
target: {builtin: demo}
load: {rate: 20/s, requests: [{path: /api/orders}]}
phases:
  - name: pause
    duration: 1h
    faults:
      - pause: {process: target, duration: 50m}
`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	defer pr.Close()
	paused := make(chan int, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			var pid int
			if i := strings.Index(sc.Text(), "paused target (pid "); i >= 0 {
				if _, err := fmt.Sscanf(sc.Text()[i:], "paused target (pid %d)", &pid); err == nil {
					paused <- pid
					cancel()
				}
			}
		}
	}()
	opts := demoOptions(t)
	opts.Progress = pw
	r, err := Run(ctx, s, opts)
	pw.Close()
	if err == nil {
		t.Fatal("interrupted run: no error")
	}
	var pid int
	select {
	case pid = <-paused:
	default:
		t.Fatalf("the run ended before the pause: %v", err)
	}
	if r == nil || !r.Interrupted {
		t.Fatalf("report %+v, want an interrupted one", r)
	}
	// Run stops what it started before it returns: the process is gone,
	// not a frozen one left behind.
	if b, err := os.ReadFile(filepath.Join("/proc", fmt.Sprint(pid), "stat")); err == nil && !strings.Contains(string(b), ") Z ") {
		t.Errorf("the paused target (pid %d) outlived the run: %s", pid, b)
	}
	var states []string
	for _, e := range r.Events {
		if e.Source == "process" && e.Kind == "transition" {
			states = append(states, e.To)
		}
	}
	if len(states) < 2 || states[0] != string(service.StatePaused) || states[1] != string(service.StateReady) {
		t.Errorf("target's transitions %v: want paused, then ready (continued) before it was stopped", states)
	}
}

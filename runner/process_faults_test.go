package runner

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/resctl/resctl/harness"
	"github.com/resctl/resctl/internal/demo"
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

// The process-kill example, run as users run it: the demo target killed
// with SIGKILL mid-phase and started again; its SLAs time its return from
// the run's own record.
func TestExample_ProcessKill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an example scenario: 13 s of real load")
	}
	t.Parallel()
	r := runExample(t, programs.wait(t, "./cmd/resctl"), "../testdata/scenarios/process-kill.yaml")
	requirePassed(t, r)
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
	frozen := make(chan bool, 1) // what /proc said of it before the interrupt
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			var pid int
			if i := strings.Index(sc.Text(), "paused target (pid "); i >= 0 {
				if _, err := fmt.Sscanf(sc.Text()[i:], "paused target (pid %d)", &pid); err == nil {
					b, _ := os.ReadFile(filepath.Join("/proc", fmt.Sprint(pid), "stat"))
					frozen <- strings.Contains(string(b), ") T ")
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
	if _, err := os.Stat("/proc/self/stat"); err == nil && !<-frozen {
		t.Errorf("the kernel did not show the target (pid %d) stopped during its pause", pid)
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

// The replicas example: two instances of the orders service behind a
// balanced proxy, one killed; then a rolling restart of both, which never
// has both down at once.
func TestExample_ProcessReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a service")
	}
	bin := programs.wait(t, "./testdata/services/orders")
	payments, err := demo.Start("127.0.0.1:0", demo.Options{Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer payments.Close()
	t.Setenv("ORDERS_BIN", bin)
	t.Setenv("PAYMENTS_URL", payments.URL())
	// The example's fixed ports, moved to free ones.
	file := "../testdata/scenarios/process-replicas.yaml"
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, port := range []string{"18090", "18091", "18092"} {
		_, free, _ := strings.Cut(freeAddr(t), ":")
		src = []byte(strings.ReplaceAll(string(src), port, free))
	}
	s, err := scenario.Parse(file, src)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(context.Background(), s, Options{LogDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	requirePassed(t, r)
	restarts := map[string]int{}
	for _, p := range r.Processes {
		restarts[p.Name] = p.Restarts
	}
	if restarts["orders.1"] != 1 || restarts["orders.2"] != 0 {
		t.Errorf("restarts %v, want orders.1 killed and started again once, orders.2 untouched", restarts)
	}

	// A rolling restart of both replicas, one at a time.
	rolling := mustParse(t, `
name: rolling
target: {url: http://127.0.0.1:9}
services:
  - {name: orders, replicas: 2, ports: [1, 2], command: [x], ready: "127.0.0.1:{{ .Port }}"}
load: {rate: 5/s, requests: [{path: /}]}
phases:
  - name: kill
    duration: 4s
    faults:
      - restart: {process: orders}
`)
	for i := range s.Phases {
		if s.Phases[i].Name == "kill" {
			s.Phases[i].Faults = rolling.Phases[0].Faults
		}
	}
	r, err = Run(context.Background(), s, Options{LogDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ready := map[string]bool{"orders.1": true, "orders.2": true}
	var order []string
	for _, e := range r.Events {
		if e.Source != "process" || e.Kind != "transition" {
			continue
		}
		ready[e.Name] = e.To == "ready"
		order = append(order, e.Name+":"+e.To)
		if !ready["orders.1"] && !ready["orders.2"] {
			t.Fatalf("both replicas not ready at %vs: %v", e.AtS, order)
		}
	}
	want := "orders.1:down orders.1:starting orders.1:ready orders.2:down orders.2:starting orders.2:ready"
	if got := strings.Join(order, " "); got != want {
		t.Errorf("transitions %q, want %q", got, want)
	}
	for _, sla := range r.SLAs {
		if sla.During == "kill" && !sla.Passed {
			t.Errorf("during the rolling restart: SLA %q failed: observed %s", sla.Name, sla.Observed)
		}
	}
}

// Process faults through the admin API while a run goes on, as `resctl
// inject kill --process` sends them: a kill with restart acts on the
// run's target; a name the run did not start and a bad signal are
// refused, saying why.
func TestRun_ProcessFaultThroughAdminAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a scenario")
	}
	adminAddr := freeAddr(t)
	s := mustParse(t, fmt.Sprintf(`
name: api-kill
target: {builtin: demo}
proxy: {admin: %q}
load: {rate: 20/s, requests: [{path: /api/orders}]}
phases:
  - {name: watch, duration: 1h}
`, adminAddr))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ac := &harness.AdminClient{BaseURL: "http://" + adminAddr}
	checks := make(chan error, 1)
	go func() {
		defer cancel()
		checks <- func() error {
			// The admin API answers once the run has its processes.
			for {
				ps, err := ac.Processes(ctx)
				if err == nil && len(ps) == 1 && ps[0].State == "ready" {
					break
				}
				if ctx.Err() != nil {
					return ctx.Err()
				}
				time.Sleep(20 * time.Millisecond)
			}
			var ae *harness.APIError
			if _, err := ac.ActOnProcess(ctx, "payments", "kill", nil); !errors.As(err, &ae) || ae.Status != 404 {
				return fmt.Errorf("kill of a process the run did not start: %v, want 404", err)
			}
			if _, err := ac.ActOnProcess(ctx, "target", "kill", map[string]any{"signal": "SIGNOPE"}); !errors.As(err, &ae) || ae.Status != 400 || len(ae.Problems) != 1 || ae.Problems[0].Field != "signal" {
				return fmt.Errorf("kill with a bad signal: %v, want 400 naming the signal", err)
			}
			info, err := ac.ActOnProcess(ctx, "target", "kill", map[string]any{"restart": true})
			if err != nil {
				return err
			}
			if info.State != "down" && info.State != "starting" && info.State != "ready" {
				return fmt.Errorf("after the kill the target is %q", info.State)
			}
			// Until it is back.
			for {
				ps, err := ac.Processes(ctx)
				if err != nil {
					return err
				}
				if ps[0].Restarts == 1 && ps[0].State == "ready" {
					return nil
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}()
	r, _ := Run(ctx, s, demoOptions(t))
	if err := <-checks; err != nil {
		t.Fatal(err)
	}
	if r == nil || len(r.Processes) != 1 || r.Processes[0].Restarts != 1 {
		t.Fatalf("report's processes: %+v, want the target restarted once", r)
	}
	var kinds []string
	for _, e := range r.Events {
		if e.Source == "process" && e.Kind != "transition" {
			kinds = append(kinds, e.Kind)
		}
	}
	if got := strings.Join(kinds, " "); got != "kill start" {
		t.Errorf("process events %q, want the kill and the start", got)
	}
}

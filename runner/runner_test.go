package runner

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/resctl/resctl/internal/demo"
	"github.com/resctl/resctl/load"
	"github.com/resctl/resctl/report"
	"github.com/resctl/resctl/scenario"
)

func TestMain(m *testing.M) {
	if addr := os.Getenv("RUNNER_ANNOUNCE"); addr != "" {
		// A service that never becomes ready: it says it started, then
		// waits to be stopped.
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
		}
		time.Sleep(time.Hour)
		return
	}
	if os.Getenv("RUNNER_SERVICE") != "" {
		serviceUnderTest()
		return
	}
	if childMain() {
		return
	}
	flag.Parse()
	programs.startEarly()
	code := m.Run()
	if err := programs.close(); err != nil && code == 0 {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	// service starts processes from one goroutine that lives as long as
	// the process (see service.startCmd).
	if err := goleak.Find(goleak.IgnoreAnyFunction("github.com/resctl/resctl/service.spawnLoop")); err != nil && code == 0 {
		fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
		code = 1
	}
	os.Exit(code)
}

// serviceUnderTest is a service that calls a downstream API for every
// request, as a service under test calls its dependency: the test binary
// runs it as a child process (RUNNER_SERVICE set) for the dependency
// topology.
func serviceUnderTest() {
	down := os.Getenv("DOWNSTREAM")
	client := &http.Client{Timeout: 2 * time.Second}
	srv := &http.Server{Addr: os.Getenv("LISTEN"), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := client.Get(down + r.URL.Path)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	})}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		<-sig
		_ = srv.Close()
	}()
	_ = srv.ListenAndServe()
}

func mustParse(t *testing.T, src string) *scenario.Scenario {
	t.Helper()
	s, err := scenario.Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("parse scenario: %v", err)
	}
	return s
}

const threePhases = `
name: three phases
seed: 3
target: {builtin: demo}
load:
  rate: 40/s
  requests: [{path: /api/users/1}]
phases:
  - {name: baseline, duration: 1s}
  - name: fault
    duration: 1s
    faults:
      - abort: {status: 503}
      - latency: {delay: 50ms, percent: 0}
  - {name: recovery, duration: 1s}
slas:
  - {name: clean baseline, during: baseline, expect: success_rate == 100%}
  - {name: all aborted, during: fault, expect: error_rate == 100%}
  - {name: impossible, expect: p50 < 1us}
  - {name: detected, expect: time_to(error_rate > 50%) < 1s}
  - {name: recovered, expect: 'recovery_time(success_rate == 100%, hold: 1s) < 1s'}
  - {name: fault was on, during: fault, expect: 'fault("fault/abort") == on'}
  - {name: target scraped, expect: 'last(target:go_goroutines) > 0 and increase(proxy:resctl_proxy_requests_total{code="503"}) >= 40'}
  - {name: a typo in a metric name, expect: 'last(target:go_goroutinez) > 0'}
  - {name: a typo in the name of a series not kept, expect: 'last(target:go_memstats_heap_sys_bytez) > 0'}
`

func TestRun_PhasesFaultsAndVerdicts(t *testing.T) {
	s := mustParse(t, threePhases)
	r, err := Run(context.Background(), s, Options{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := len(r.Phases); got != 3 {
		t.Fatalf("phases = %d, want 3", got)
	}
	// A busy machine may send the last phase's last requests too late
	// to count (the run ends on schedule); the run says how many.
	unsent := r.Run.Scheduled - r.Run.Sent
	if r.Run.Scheduled != 120 || unsent > 20 {
		t.Errorf("sent %d of %d scheduled requests, want 120 scheduled and most sent", r.Run.Sent, r.Run.Scheduled)
	}
	for i, want := range []uint64{40, 40, 40 - unsent} {
		if p := r.Phases[i]; p.Requests != want {
			t.Errorf("phase %s: %d requests, want %d", p.Name, p.Requests, want)
		}
	}
	if got := r.Phases[1].Codes["503"]; got != 40 {
		t.Errorf("fault phase 503s = %d, want 40 (codes %v)", got, r.Phases[1].Codes)
	}
	if r.Phases[0].SuccessRate != 1 || r.Phases[2].SuccessRate != 1 {
		t.Errorf("baseline/recovery success = %v/%v, want 1/1", r.Phases[0].SuccessRate, r.Phases[2].SuccessRate)
	}
	if r.Total.Requests != 120-unsent {
		t.Errorf("total requests = %d, want the %d sent", r.Total.Requests, 120-unsent)
	}

	wantSLA := map[string]bool{"clean baseline": true, "all aborted": true, "impossible": false,
		"detected": true, "recovered": true, "fault was on": true, "target scraped": true, "a typo in a metric name": false,
		"a typo in the name of a series not kept": false}
	for _, sla := range r.SLAs {
		if sla.Passed != wantSLA[sla.Name] {
			t.Errorf("SLA %q passed = %v, want %v (observed %s)", sla.Name, sla.Passed, wantSLA[sla.Name], sla.Observed)
		}
		if sla.Observed == "" {
			t.Errorf("SLA %q has no observed value", sla.Name)
		}
	}
	if r.Passed {
		t.Error("report passed although an SLA failed")
	}
	for _, sla := range r.SLAs {
		switch sla.Name {
		case "a typo in a metric name":
			if !strings.Contains(sla.Error, "did you mean target:go_goroutines?") {
				t.Errorf("typo SLA error %q lacks the suggestion", sla.Error)
			}
		case "a typo in the name of a series not kept":
			// The scraper drops the series nothing reads, but remembers
			// their names for this.
			if !strings.Contains(sla.Error, "did you mean target:go_memstats_heap_sys_bytes?") {
				t.Errorf("typo SLA error %q lacks the suggestion", sla.Error)
			}
		case "detected":
			// The abort fault hits every request of the fault phase, so
			// detection is its first second: exactly its start.
			if sla.Kind != "time_to" || sla.AtS == nil || *sla.AtS != 1 {
				t.Errorf("detected: kind %q at %v, want time_to at 1s", sla.Kind, sla.AtS)
			}
		case "recovered":
			if sla.Kind != "recovery_time" || sla.AtS == nil || *sla.AtS != 2 {
				t.Errorf("recovered: kind %q at %v, want recovery_time at 2s", sla.Kind, sla.AtS)
			}
		}
	}

	if len(r.Faults) != 2 {
		t.Fatalf("faults = %+v, want 2", r.Faults)
	}
	abort, lat := r.Faults[0], r.Faults[1]
	if abort.ID != "fault/abort" || abort.Phase != "fault" || abort.Injected != 40 || abort.EffectiveRate != 1 {
		t.Errorf("abort fault = %+v", abort)
	}
	// The latency fault sits behind the abort: every request was answered
	// before it, so it matched nothing — and at 0% it would inject nothing.
	if lat.Injected != 0 {
		t.Errorf("latency fault at 0%% injected %d", lat.Injected)
	}
	if abort.StartS < 0.9 || abort.EndS < abort.StartS {
		t.Errorf("abort fault window %.3f..%.3f", abort.StartS, abort.EndS)
	}

	var kinds []string
	for _, e := range r.Events {
		kinds = append(kinds, e.Source+":"+e.Kind+":"+e.Detail)
	}
	got := strings.Join(kinds, " ")
	for _, want := range []string{"phase:start:baseline", "fault:on:fault/abort", "fault:off:fault/abort", "phase:end:recovery"} {
		if !strings.Contains(got, want) {
			t.Errorf("events %q lack %q", got, want)
		}
	}
	if len(r.Series) < 3 {
		t.Errorf("series has %d seconds, want >= 3", len(r.Series))
	}
}

func TestRun_UnreachableTarget(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := mustParse(t, `
name: dead
target: {url: "http://`+addr+`"}
load: {rate: 5/s, requests: [{path: /}]}
phases: [{name: only, duration: 1s}]
`)
	r, err := Run(context.Background(), s, Options{})
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
	// CI reporters show the error: the report says it, with the phase not run.
	if r == nil || r.Verdict() != report.VerdictError || !strings.Contains(r.Error, "target unreachable") ||
		r.Reached != "starting the target" || !r.Phases[0].NotRun || r.Run.Sent != 0 {
		t.Errorf("report = %+v, want the error, reached starting the target, nothing sent", r)
	}
}

// TestRun_InterruptKeepsRecordingAndClearsFaults interrupts a run in its
// long fault phase: what was recorded is kept, the faults are cleared, a
// phase that ended is judged, and the SLAs whose window the interrupt cut
// short (the fault phase, the whole run) are not evaluated rather than
// failed for data the run never had the time to collect. The generator
// is held to the schedule up to the interrupt only.
func TestRun_InterruptKeepsRecordingAndClearsFaults(t *testing.T) {
	s := mustParse(t, `
name: long
target: {builtin: demo}
load: {rate: 20/s, requests: [{path: /api/orders}]}
phases:
  - {name: baseline, duration: 1s}
  - name: fault
    duration: 1m
    faults: [{latency: {delay: 100ms}}]
slas:
  - {name: baseline answered, during: baseline, expect: success_rate >= 0%}
  - {name: slow in the fault, during: fault, expect: p50 >= 100ms}
  - {name: many injected, expect: 'increase(proxy:resctl_fault_injected_total) > 100'}
`)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(2500*time.Millisecond, cancel)
	start := time.Now()
	r, err := Run(ctx, s, Options{})
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("err = %v, want ErrInterrupted", err)
	}
	if time.Since(start) > 30*time.Second {
		t.Fatalf("Run took %v after the interrupt", time.Since(start))
	}
	if r == nil || !r.Interrupted || r.Passed {
		t.Fatalf("report = %+v, want interrupted and not passed", r)
	}
	if r.Phases[0].Requests == 0 || r.Phases[1].Requests == 0 {
		t.Errorf("recorded %d/%d requests, want some in both phases", r.Phases[0].Requests, r.Phases[1].Requests)
	}
	if len(r.Faults) != 1 || r.Faults[0].EndS == 0 {
		t.Errorf("faults = %+v, want the latency fault switched off", r.Faults)
	}
	if sla := r.SLAs[0]; !sla.Passed || sla.NotEvaluated != "" {
		t.Errorf("the baseline's SLA = %+v, want judged: its phase ended", sla)
	}
	for _, sla := range r.SLAs[1:] {
		if sla.NotRun || sla.Passed || !strings.Contains(sla.NotEvaluated, "the run was interrupted before") {
			t.Errorf("SLA %q = %+v, want not evaluated: the interrupt cut its window short", sla.Name, sla)
		}
	}
	// The schedule counted against the generator ends at the interrupt,
	// where the run says it stopped.
	if due := uint64(math.Ceil(load.NewPacer(newPlan(s).steps).Hits(time.Duration(r.Total.EndS*1e6)*time.Microsecond + time.Microsecond))); r.Run.Scheduled > due {
		t.Errorf("scheduled %d requests, but only %d were due by the interrupt at %vs", r.Run.Scheduled, due, r.Total.EndS)
	}
	if r.Total.EndS > r.DurationS {
		t.Errorf("the run ends at %vs, after it was over (%vs)", r.Total.EndS, r.DurationS)
	}
}

// TestRun_InterruptAtAnyMoment interrupts runs during start-up, as the
// first phase begins, and at 0.2 s whatever the run is doing then: each
// leaves a report, in every format, that says how far the run got, with
// what never ran marked not run, not failed.
func TestRun_InterruptAtAnyMoment(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	const phases = `
load: {rate: 20/s, requests: [{path: /api/users/1}]}
phases:
  - {name: baseline, duration: 1s}
  - {name: fault, duration: 1m}
slas:
  - {name: healthy, during: baseline, expect: success_rate >= 0%}
  - {name: survives, during: fault, expect: success_rate >= 99%}
  - {name: detects, expect: "time_to(success_rate < 50%, from=fault) < 1s"}
  - {name: recovers, expect: "recovery_time(success_rate >= 99%, from=baseline) < 1s"}
`
	tests := []struct {
		name string
		// interrupt arms the interrupt: it calls cancel on some event.
		interrupt   func(t *testing.T, cancel func()) (scenario string, progress io.Writer)
		wantReached string // empty: any
		wantNotRun  []string
	}{
		{"while a service starts", func(t *testing.T, cancel func()) (string, io.Writer) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			go func() {
				if c, err := ln.Accept(); err == nil {
					c.Close()
					cancel()
				}
			}()
			return `
name: slow start
services:
  - name: slow
    command: ["` + self + `"]
    env: {RUNNER_ANNOUNCE: "` + ln.Addr().String() + `"}
    ready: 127.0.0.1:1
target: {builtin: demo}` + phases, nil
		}, "starting service slow", []string{"healthy", "survives", "detects", "recovers"}},
		{"as the first phase begins", func(t *testing.T, cancel func()) (string, io.Writer) {
			return "name: first phase\ntarget: {builtin: demo}" + phases, &onLine{prefix: "resctl: phase baseline", do: cancel}
		}, "phase baseline", []string{"survives", "detects", "recovers"}},
		{"at 0.2s", func(t *testing.T, cancel func()) (string, io.Writer) {
			time.AfterFunc(200*time.Millisecond, cancel)
			return "name: early\ntarget: {builtin: demo}" + phases, nil
		}, "", []string{"survives", "detects", "recovers"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			src, progress := tt.interrupt(t, cancel)
			r, err := Run(ctx, mustParse(t, src), Options{Progress: progress})
			if !errors.Is(err, ErrInterrupted) {
				t.Fatalf("err = %v, want ErrInterrupted", err)
			}
			if r == nil || !r.Interrupted || r.Verdict() != report.VerdictInterrupted || r.Reached == "" {
				t.Fatalf("report = %+v, want an interrupted one that says how far it got", r)
			}
			if tt.wantReached != "" && r.Reached != tt.wantReached {
				t.Errorf("reached %q, want %q", r.Reached, tt.wantReached)
			}
			notRun := map[string]bool{}
			for _, s := range r.SLAs {
				notRun[s.Name] = s.NotRun
				if s.NotRun && (s.Passed || s.Observed != "" || s.Error != "") {
					t.Errorf("SLA %q not run but judged: %+v", s.Name, s)
				}
			}
			for _, name := range tt.wantNotRun {
				if !notRun[name] {
					t.Errorf("SLA %q not marked not run: %+v", name, r.SLAs)
				}
			}
			if !r.Phases[1].NotRun || r.Phases[1].Requests != 0 {
				t.Errorf("phase fault = %+v, want not run", r.Phases[1])
			}
			for _, f := range report.Formats {
				var b bytes.Buffer
				if err := report.Write(&b, f, r); err != nil {
					t.Errorf("write %s: %v", f, err)
				}
				if f == report.FormatJUnit && !strings.Contains(b.String(), `<skipped message="not run: the run stopped before phase fault">`) {
					t.Errorf("junit has no skipped test case for the fault phase's SLA:\n%s", b.String())
				}
			}
		})
	}
}

// onLine calls do once a line written to it starts with prefix.
type onLine struct {
	prefix string
	do     func()
	once   sync.Once
}

func (o *onLine) Write(b []byte) (int, error) {
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, o.prefix) {
			o.once.Do(o.do)
		}
	}
	return len(b), nil
}

// TestRun_SteadyStateNotMetStopsBeforeFaults fails the steady state of
// the baseline: the run stops exactly at the baseline's end, so the fault
// and recovery phases, their SLAs and their faults are not run (not failed,
// not "never fired"), and the schedule it counts the generator against ends
// there too.
func TestRun_SteadyStateNotMetStopsBeforeFaults(t *testing.T) {
	s := mustParse(t, `
name: unhealthy from the start
target: {builtin: demo}
load: {rate: 20/s, requests: [{path: /api/users/1}]}
require_faults_fired: true
phases:
  - name: baseline
    duration: 1s
    faults: [{abort: {status: 500, percent: 100}}]
  - name: fault
    duration: 1m
    faults: [{latency: {delay: 1s}}]
  - {name: recovery, duration: 1s}
slas:
  - {name: healthy first, during: baseline, steady_state: true, expect: success_rate >= 99%}
  - {name: still serving, during: fault, expect: success_rate >= 50%}
  - {name: recovered, expect: 'recovery_time(success_rate >= 99%, hold: 1s) < 2s'}
`)
	r, err := Run(context.Background(), s, Options{})
	if err != nil {
		t.Fatalf("Run: %v (an abort is a verdict, not a run failure)", err)
	}
	if r.Passed || r.Verdict() != report.VerdictAborted || !strings.Contains(r.Aborted, "steady state not met after phase baseline") {
		t.Fatalf("verdict %s, passed %v, aborted %q", r.Verdict(), r.Passed, r.Aborted)
	}
	if r.Reached != "phase baseline" {
		t.Errorf("reached %q, want phase baseline: the run stopped at its end", r.Reached)
	}
	if r.Phases[0].NotRun || !r.Phases[1].NotRun || !r.Phases[2].NotRun || r.Phases[1].Requests != 0 {
		t.Errorf("phases = %+v, want baseline run, fault and recovery not run", r.Phases)
	}
	if r.Total.EndS != r.Phases[0].EndS {
		t.Errorf("the run ends at %vs, want the baseline's end, %vs", r.Total.EndS, r.Phases[0].EndS)
	}
	for _, e := range r.Events {
		if e.Source == "phase" && e.Detail != "baseline" {
			t.Errorf("event %+v: a phase after the failed steady state began", e)
		}
	}
	for _, sla := range r.SLAs {
		switch {
		case sla.Name == "healthy first":
			if sla.NotRun || sla.Passed {
				t.Errorf("the steady state SLA = %+v, want judged and failed", sla)
			}
		case sla.Expect == "require_faults_fired":
			t.Errorf("%s: %s %s; want no verdict on a fault that never had a chance", sla.Name, sla.Observed, sla.Error)
		case !sla.NotRun:
			t.Errorf("SLA %q = %+v, want not run", sla.Name, sla)
		}
	}
	var latency *report.Fault
	for i, f := range r.Faults {
		if f.ID == "fault/latency" {
			latency = &r.Faults[i]
		}
	}
	if latency == nil || !latency.NotRun || latency.Fired || latency.Matched != 0 {
		t.Errorf("fault/latency = %+v, want listed as not run", latency)
	}
	// The generator is held to the schedule up to where the run stopped:
	// the baseline's 20 requests, not the ones the abort held back.
	if r.Run.Scheduled != 20 {
		t.Errorf("scheduled %d requests, want the baseline's 20", r.Run.Scheduled)
	}
	if r.Run.GeneratorBehind && r.Run.Sent+r.Run.Dropped >= r.Run.Scheduled {
		t.Errorf("generator behind (%s) though it sent all %d it was due to", r.Run.BehindReason, r.Run.Scheduled)
	}
	var b bytes.Buffer
	if err := report.WriteTerminal(&b, r, report.TerminalOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"stopped while phase fault", "never fired", "fell behind: sent"} {
		if strings.Contains(b.String(), bad) {
			t.Errorf("the summary says %q:\n%s", bad, b.String())
		}
	}
}

func TestRun_AbortOnBreach(t *testing.T) {
	s := mustParse(t, `
name: safety net
target: {builtin: demo}
load: {rate: 20/s, requests: [{path: /api/users/1}]}
phases:
  - {name: baseline, duration: 1s}
  - name: fault
    duration: 1m
    faults: [{abort: {percent: 100}}]
  - {name: recovery, duration: 1s}
slas:
  - {name: stop if errors pass half, during: fault, abort_on_breach: true, expect: error_rate < 50%}
  - {name: back to normal, during: recovery, expect: success_rate >= 99%}
`)
	start := time.Now()
	r, err := Run(context.Background(), s, Options{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Fatalf("the run went on for %v after the breach", took)
	}
	if r.Passed || !strings.Contains(r.Aborted, `"stop if errors pass half" breached during phase fault`) {
		t.Fatalf("passed %v, aborted %q", r.Passed, r.Aborted)
	}
	// Stopped in the middle of the fault phase: that phase ran, its SLA
	// failed and its fault fired; only the recovery is not run.
	if r.Reached != "phase fault" || r.Phases[1].NotRun || r.Phases[1].Requests == 0 || !r.Phases[2].NotRun {
		t.Errorf("reached %q, phases %+v; want the fault phase run, the recovery not", r.Reached, r.Phases)
	}
	if r.Total.EndS <= r.Phases[1].StartS || r.Total.EndS >= r.Phases[2].StartS {
		t.Errorf("the run ends at %vs, want inside the fault phase, from %vs to %vs", r.Total.EndS, r.Phases[1].StartS, r.Phases[2].StartS)
	}
	if sla := r.SLAs[0]; sla.NotRun || sla.NotEvaluated != "" || sla.Passed {
		t.Errorf("the breached SLA = %+v, want judged and failed", sla)
	}
	if sla := r.SLAs[1]; !sla.NotRun {
		t.Errorf("the recovery's SLA = %+v, want not run", sla)
	}
	if len(r.Faults) != 1 || r.Faults[0].NotRun || !r.Faults[0].Fired {
		t.Errorf("faults = %+v, want the fault phase's abort fired", r.Faults)
	}
}

// syncBuffer is a bytes.Buffer safe to write from the run and read from
// the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The proxy of a run serves the admin API: a fault added by hand while the
// run goes on acts on its requests and is in the report.
func TestRun_AdminAPIDuringRun(t *testing.T) {
	s := mustParse(t, `
name: live
target: {builtin: demo}
load: {rate: 40/s, requests: [{path: /api/users/1}]}
phases: [{name: only, duration: 3s}]
`)
	var progress syncBuffer
	added := make(chan error, 1)
	go func() {
		re := regexp.MustCompile(`admin API and metrics (http://\S+)\)`)
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			m := re.FindStringSubmatch(progress.String())
			if m == nil {
				continue
			}
			post := func(path, body string) error {
				resp, err := http.Post(m[1]+path, "application/json", strings.NewReader(body))
				if err != nil {
					return err
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					return fmt.Errorf("POST %s: %s", path, resp.Status)
				}
				return nil
			}
			err := post("/api/v1/proxies/proxy/faults", `{"id": "by-hand", "kind": "abort", "ttl": "1m", "params": {"status": 418}}`)
			if err == nil {
				err = post("/api/v1/marks", `{"text": "deploy v2"}`)
			}
			added <- err
			return
		}
		added <- errors.New("the run never printed its admin URL")
	}()
	r, err := Run(context.Background(), s, Options{Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-added; err != nil {
		t.Fatal(err)
	}
	if r.Phases[0].Codes["418"] == 0 {
		t.Errorf("no 418s from the fault added through the admin API: codes %v", r.Phases[0].Codes)
	}
	found := false
	for _, f := range r.Faults {
		found = found || (f.ID == "by-hand" && f.Injected > 0)
	}
	if !found {
		t.Errorf("the fault added by hand is not in the report: %+v", r.Faults)
	}
	// What was done through the admin API is on the run's timeline.
	var addedAt, markAt float64 = -1, -1
	for _, e := range r.Events {
		switch {
		case e.Source == "fault" && e.Kind == "added" && strings.HasPrefix(e.Detail, "by-hand on proxy (admin API): abort"):
			addedAt = e.AtS
		case e.Source == "mark" && e.Detail == "deploy v2":
			markAt = e.AtS
		}
	}
	if addedAt < 0 || markAt < addedAt || markAt > r.DurationS {
		t.Errorf("events %+v: want the fault added by hand, then the mark, within the run's %.1fs", r.Events, r.DurationS)
	}
}

// A runtime fault runs inside the target through its agent for exactly its
// phase: the target's goroutines climb during it and come back after.
func TestRun_RuntimeFaultThroughAgent(t *testing.T) {
	s := mustParse(t, `
name: goroutine flood
target: {builtin: demo}
load: {rate: 20/s, requests: [{path: /api/users/1}]}
phases:
  - {name: baseline, duration: 1s}
  - name: flood
    duration: 2s
    faults: [{goroutines: {count: 5000, mode: park}}]
  - {name: after, duration: 2s}
require_faults_fired: true
slas:
  - name: the flood showed in the target's metrics
    expect: max(target:go_goroutines during flood) > 4000
  - name: and went away
    expect: last(target:go_goroutines) < 0.5 * max(target:go_goroutines during flood)
`)
	r, err := Run(context.Background(), s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, sla := range r.SLAs {
		if !sla.Passed {
			t.Errorf("SLA %q failed: observed %s %s", sla.Name, sla.Observed, sla.Error)
		}
	}
	var rt *report.Fault
	for i, f := range r.Faults {
		if f.ID == "flood/goroutines" {
			rt = &r.Faults[i]
		}
	}
	if rt == nil || !rt.Fired || rt.Layer != "runtime" || rt.Phase != "flood" {
		t.Fatalf("runtime fault in the report = %+v", rt)
	}
}

// A tcp proxy moves the load's bytes with connection faults: a blackhole
// partitions the target for its phase (requests time out), and the run
// recovers once it ends.
func TestRun_TCPProxyPartition(t *testing.T) {
	s := mustParse(t, `
name: partition
target: {builtin: demo}
proxy: {protocol: tcp}
load: {rate: 20/s, timeout: 500ms, requests: [{path: /api/users/1}]}
phases:
  - {name: baseline, duration: 1s}
  - name: partition
    duration: 1s
    faults: [blackhole]
  - {name: healed, duration: 2s}
slas:
  - {name: healthy before, during: baseline, expect: success_rate == 100%}
  - {name: partitioned, during: partition, expect: error_rate > 90%}
  - {name: healed, expect: 'recovery_time(success_rate == 100%, hold=1s) < 2s'}
`)
	r, err := Run(context.Background(), s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, sla := range r.SLAs {
		if !sla.Passed {
			t.Errorf("SLA %q failed: observed %s %s", sla.Name, sla.Observed, sla.Error)
		}
	}
	if len(r.Faults) != 1 || r.Faults[0].Kind != "blackhole" || !r.Faults[0].Fired {
		t.Errorf("faults = %+v, want the blackhole, fired", r.Faults)
	}
}

// The dependency topology: the proxy fronts the service's dependency, resctl
// starts the service with the proxy's address, the load goes straight to
// the service, and an abort at the dependency's proxy shows in the
// service's answers. The service is stopped when the run ends.
func TestRun_ServiceUnderTestBehindItsDependencyProxy(t *testing.T) {
	dep, err := demo.Start("127.0.0.1:0", demo.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer dep.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	s := mustParse(t, `
name: dependency
target:
  url: http://`+addr+`
  command: ["`+self+`"]
  env: {RUNNER_SERVICE: "1", LISTEN: "`+addr+`", DOWNSTREAM: "{{ .Proxy.URL }}"}
proxy: {upstream: "`+dep.URL()+`"}
load: {rate: 20/s, requests: [{path: /api/users/1}]}
phases:
  - {name: baseline, duration: 1s}
  - name: outage
    duration: 1s
    faults: [{abort: {status: 503}}]
  - {name: after, duration: 1s}
slas:
  - {name: healthy, during: baseline, expect: success_rate == 100%}
  - {name: the dependency's outage reached the users, during: outage, expect: error_rate > 80%}
  - {name: healthy again, during: after, expect: success_rate >= 90%}
`)
	r, err := Run(context.Background(), s, Options{LogDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, sla := range r.SLAs {
		if !sla.Passed {
			t.Errorf("SLA %q failed: observed %s %s", sla.Name, sla.Observed, sla.Error)
		}
	}
	if !strings.Contains(r.Target, "pid ") {
		t.Errorf("target %q does not say it was started", r.Target)
	}
	// The service is gone: its port is free again.
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("the service under test still listens on %s after the run", addr)
	}
}

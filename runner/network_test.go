package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/resctl/resctl/inject/netem"
	"github.com/resctl/resctl/report"
	"github.com/resctl/resctl/scenario"
)

// TestRun_NetworkPartition lays the proxy's upstream connections across a
// namespace link and partitions it for a phase: requests time out, the
// fault counts the packets that vanished, and the run recovers once the
// link heals. The namespaces are gone after the run.
func TestRun_NetworkPartition(t *testing.T) {
	r := runNetwork(t, `
name: network partition
target: {builtin: demo}
load: {rate: 20/s, timeout: 500ms, requests: [{path: /api/users/1}]}
phases:
  - {name: baseline, duration: 1s}
  - name: partition
    duration: 2s
    faults: [{network: {partition: true, direction: both}}]
  - {name: healed, duration: 2s}
require_faults_fired: true
slas:
  - {name: healthy before, during: baseline, expect: success_rate == 100%}
  # Requests in the partition's last few hundred milliseconds stall, and
  # are answered within their timeout once the link heals.
  - {name: partitioned, during: partition, expect: error_rate > 60%}
  - {name: healed, expect: 'recovery_time(success_rate == 100%, hold=1s) < 2s'}
`)
	f := networkFaultIn(t, r, "partition/network")
	if !f.Fired || f.Matched == 0 || f.Proxy != "proxy" || f.EndS <= f.StartS {
		t.Errorf("network fault in the report = %+v, want it fired on the main proxy's link", f)
	}
}

// TestRun_NetworkRate shapes the answers of a tcp proxy's upstream with a
// kernel rate limit: the phase's responses are slower by about the time
// their bytes take at the rate (the demo's /metrics, about 21 KB, at
// 64 KiB/s: 320 ms). A rate can only slow a response, so the bound holds
// however busy the machine is; how fast the baseline is, is the machine's.
func TestRun_NetworkRate(t *testing.T) {
	r := runNetwork(t, `
name: network rate
target: {builtin: demo}
proxy: {protocol: tcp}
load: {rate: 2/s, timeout: 3s, requests: [{path: /metrics, headers: {Accept-Encoding: identity}}]}
phases:
  - {name: baseline, duration: 1s}
  - name: slow link
    duration: 2s
    faults: [{network: {rate: 64KiB}}]
slas:
  - {name: slowed by the rate, during: slow link, expect: p50 > 200ms and success_rate == 100%}
`)
	if f := networkFaultIn(t, r, "slow_link/network"); !f.Fired {
		t.Errorf("network fault = %+v, want it fired", f)
	}
}

// runNetwork runs a scenario with network faults, or skips where they
// cannot be made; every SLA must pass, and the run must leave none of its
// namespaces behind.
func runNetwork(t *testing.T, src string) *report.Report {
	t.Helper()
	if err := netem.Supported(); err != nil {
		t.Skipf("skipping real network faults: %v", err)
	}
	r, err := Run(context.Background(), mustParse(t, src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, sla := range r.SLAs {
		if !sla.Passed {
			t.Errorf("SLA %q failed: observed %s %s", sla.Name, sla.Observed, sla.Error)
		}
	}
	noNamespacesLeft(t, os.Getpid())
	return r
}

func networkFaultIn(t *testing.T, r *report.Report, id string) report.Fault {
	t.Helper()
	for _, f := range r.Faults {
		if f.ID == id {
			if f.Layer != "network" {
				t.Errorf("fault %s layer %q, want network", id, f.Layer)
			}
			return f
		}
	}
	t.Fatalf("no fault %s in the report: %+v", id, r.Faults)
	return report.Fault{}
}

// noNamespacesLeft checks that the run removed the namespaces it made,
// named after the pid of the process that ran it (a test's own, or a
// resctl it started): other processes' runs may go on beside.
func noNamespacesLeft(t *testing.T, pid int) {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	mine := fmt.Sprintf("%s%d-", netem.Prefix, pid)
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, mine) {
			t.Errorf("namespace left behind: %s", line)
		}
	}
}

// TestExample_NetworkPartition runs the example scenario that partitions
// the link between the proxy and the demo target, as users run it. The
// other tests that create namespaces do not run in parallel.
func TestExample_NetworkPartition(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an example scenario: 10 s of real load")
	}
	if err := netem.Supported(); err != nil {
		t.Skipf("skipping real network faults: %v", err)
	}
	t.Parallel()
	const file = "../testdata/scenarios/network-partition.yaml"
	r, pid := runExamplePid(t, programs.wait(t, "./cmd/resctl"), file)
	checkExample(t, file, r)
	noNamespacesLeft(t, pid)
}

// TestRun_NetworkDelay delays the answers on the link by 100 ms (netem, or
// its stand-in on kernels without it): the phase's responses take that
// much longer than the baseline's, once (not twice), and none fails.
func TestRun_NetworkDelay(t *testing.T) {
	runNetwork(t, `
name: network delay
target: {builtin: demo}
load: {rate: 20/s, timeout: 2s, requests: [{path: /api/users/1}]}
phases:
  - {name: baseline, duration: 1s}
  - name: delayed
    duration: 2s
    faults: [{network: {delay: 100ms}}]
require_faults_fired: true
slas:
  - {name: delayed by the link, during: delayed, expect: p50 >= 100ms and p50 < p50 during baseline + 200ms and success_rate == 100%}
`)
}

// TestRun_NetworkFlapping: a network fault with on/off windows comes and
// goes inside its phase, a flapping link: the seconds it is on are slow,
// those between fast, and its packets are counted over every window.
func TestRun_NetworkFlapping(t *testing.T) {
	r := runNetwork(t, `
name: network flapping
target: {builtin: demo}
load: {rate: 20/s, timeout: 2s, requests: [{path: /api/users/1}]}
phases:
  - {name: baseline, duration: 1s}
  - name: flapping
    duration: 6s
    faults: [{network: {delay: 150ms, schedule: {on: 2s, off: 2s}}}]
`)
	// The windows are switched by ip and tc commands, which run late on
	// a busy machine, so the seconds are judged by when the fault was
	// really on, as its events say. Requests go out evenly, so a second
	// the fault covered for three quarters or more has its p50 slowed by
	// the delay, and one it covered for a quarter or less has a p50 faster
	// than the slowest on-second's by most of it, whatever the machine's
	// own pace.
	var windows [][2]float64
	for _, e := range r.Events {
		if e.Source != "fault" || e.Detail != "flapping/network" {
			continue
		}
		switch e.Kind {
		case "on":
			windows = append(windows, [2]float64{e.AtS, r.DurationS})
		case "off":
			if len(windows) > 0 {
				windows[len(windows)-1][1] = e.AtS
			}
		}
	}
	var on, off []report.Second
	for _, sec := range r.Series {
		if sec.T < 1 || sec.T >= 7 || sec.Requests == 0 {
			continue
		}
		covered := 0.0
		for _, w := range windows {
			covered += max(0, min(w[1], float64(sec.T+1))-max(w[0], float64(sec.T)))
		}
		switch {
		case covered >= 0.75:
			on = append(on, sec)
		case covered <= 0.25:
			off = append(off, sec)
		}
	}
	if len(on) == 0 || len(off) == 0 {
		t.Fatalf("fault windows %v leave no second mostly on or none mostly off", windows)
	}
	slowest := 0.0
	for _, sec := range on {
		if sec.P50Ms < 150 {
			t.Errorf("second %d, mostly inside the fault's windows %v: p50 %.1fms, want the 150ms delay at least", sec.T, windows, sec.P50Ms)
		}
		slowest = max(slowest, sec.P50Ms)
	}
	for _, sec := range off {
		if sec.P50Ms > slowest-100 {
			t.Errorf("second %d, mostly outside the fault's windows %v: p50 %.1fms, want most of the delay gone from the on-seconds' %.1fms", sec.T, windows, sec.P50Ms, slowest)
		}
	}
	f := networkFaultIn(t, r, "flapping/network")
	switches := map[string]int{}
	for _, e := range r.Events {
		if e.Source == "fault" && e.Detail == "flapping/network" {
			switches[e.Kind]++
		}
	}
	if !f.Fired || switches["on"] != 2 || switches["off"] != 2 {
		t.Errorf("fault %+v switched %v, want fired, on and off twice each", f, switches)
	}
	// Two windows of 2 s each; the ip and tc commands that switch them
	// take longer on a busy machine, so the bound is the phase's: on for
	// a part of it, off for the rest.
	if f.OnS < 2 || f.OnS > 5 {
		t.Errorf("fault on for %.2fs over its windows, want about 4s of its 6s phase", f.OnS)
	}
}

// TestRun_NetworkFaultThisMachineCannotInject: a network fault where the
// machine cannot make one refuses the run before anything starts (no
// target, no load), unless the fault is optional: the run then goes on
// without it, reports it as not started, and require_faults_fired does
// not fail for it.
func TestRun_NetworkFaultThisMachineCannotInject(t *testing.T) {
	const src = `
name: cannot inject
target: {builtin: demo}
load: {rate: 20/s, requests: [{path: /api/users/1}]}
phases:
  - {name: baseline, duration: 500ms}
  - name: delayed
    duration: 500ms
    faults: [{network: {delay: 100ms%s}}]
require_faults_fired: true
`
	unsupported := func() error { return fmt.Errorf("%w: needs root", netem.ErrUnsupported) }
	tests := []struct {
		name     string
		optional string
		wantErr  error
	}{
		{"required", "", ErrCannotInject},
		{"optional", ", optional: true", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := scenario.Parse("test.yaml", []byte(fmt.Sprintf(src, tt.optional)))
			if err != nil {
				t.Fatal(err)
			}
			var progress strings.Builder
			r, err := Run(context.Background(), s, Options{NetworkSupported: unsupported, Progress: &progress})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Run: %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil {
				if r != nil || progress.Len() > 0 || !strings.Contains(err.Error(), "delayed/network") || !strings.Contains(err.Error(), "needs root") {
					t.Errorf("report %v, progress %q, error %q: want a refusal before anything starts that names the fault and the reason", r, progress.String(), err)
				}
				return
			}
			f := networkFaultIn(t, r, "delayed/network")
			if f.Fired || f.Error == "" || !r.Passed || r.Run.Sent == 0 {
				t.Errorf("fault %+v, passed %v, sent %d: want the run done, the fault not started with the reason", f, r.Passed, r.Run.Sent)
			}
		})
	}
}

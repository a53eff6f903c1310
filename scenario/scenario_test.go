package scenario_test

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/resctl/resctl/inject"
	"github.com/resctl/resctl/scenario"
)

func TestReadFile(t *testing.T) {
	tests := []struct {
		name string
		path string
		want *scenario.Scenario
	}{
		{
			name: "full",
			path: "testdata/full.yaml",
			want: &scenario.Scenario{
				Name:        "checkout",
				Description: "Abort and slow down the orders API.",
				Seed:        7,
				Target:      scenario.Target{URL: "http://127.0.0.1:8080"},
				Proxy:       scenario.Proxy{Protocol: "h2c", Listen: scenario.DefaultProxyListen, Admin: scenario.DefaultAdminListen, Balance: defaultBalance},
				Load: scenario.Load{AtMaxInFlight: "drop",
					Rate: 200,
					Requests: []scenario.Request{
						{Method: "GET", Path: "/api/orders"},
						{
							Method:  "POST",
							Path:    "/api/orders",
							Headers: map[string]string{"Content-Type": "application/json"},
							Body:    `{"sku": 1}`,
						},
					},
					Timeout:     scenario.DefaultLoadTimeout,
					HTTP2:       true,
					MaxInFlight: 64,
				},
				Phases: []scenario.Phase{
					{Name: "warmup", Duration: 90 * time.Second},
					{Name: "chaos", Duration: 45 * time.Second, Faults: []scenario.Fault{
						{Proxy: "proxy", ID: "chaos/abort#1", Spec: &inject.AbortSpec{Match: inject.Match{Percent: 100}, Status: 503}},
						{Proxy: "proxy", ID: "chaos/abort#2", Spec: &inject.AbortSpec{
							Match:  inject.Match{Path: "/api/orders", Method: "POST", Percent: 12.5},
							Status: 500,
							Body:   "boom",
						}},
						{Proxy: "proxy", ID: "chaos/latency#1", Spec: &inject.LatencySpec{Match: inject.Match{Percent: 100}, Delay: 250 * time.Millisecond}},
						{Proxy: "proxy", ID: "chaos/latency#2", Spec: &inject.LatencySpec{Match: inject.Match{Percent: 50}, Delay: time.Second, Jitter: 100 * time.Millisecond}},
					}},
				},
				SLAs: []scenario.SLA{
					{Name: "success_rate >= 99%", Expect: "success_rate >= 99%"},
					{Name: "slow but serving", During: "chaos", Expect: "p99 < 2s"},
				},
				Scrape: scenario.Scrape{Interval: time.Second},
				Output: scenario.Output{Dir: "resctl-out", Formats: []string{"json"}},
				File:   "testdata/full.yaml",
			},
		},
		{
			name: "quickstart",
			path: "../testdata/scenarios/quickstart.yaml",
			want: &scenario.Scenario{
				Name:   "quickstart",
				Seed:   42,
				Target: scenario.Target{Builtin: "demo"},
				Proxy:  scenario.Proxy{Protocol: "http", Listen: "127.0.0.1:0", Admin: "127.0.0.1:0", Balance: defaultBalance},
				Load: scenario.Load{AtMaxInFlight: "drop",
					Rate: 50,
					Requests: []scenario.Request{
						{Method: "GET", Path: "/api/orders"},
						{Method: "GET", Path: "/api/users/7"},
					},
					Timeout: 5 * time.Second,
				},
				Phases: []scenario.Phase{
					{Name: "warmup", Duration: 2 * time.Second},
					{Name: "baseline", Duration: 8 * time.Second},
					{Name: "fault", Duration: 10 * time.Second, Faults: []scenario.Fault{
						{Proxy: "proxy", ID: "fault/latency", Spec: &inject.LatencySpec{
							Match:  inject.Match{Percent: 50},
							Delay:  300 * time.Millisecond,
							Jitter: 20 * time.Millisecond,
						}},
					}},
					{Name: "recovery", Duration: 10 * time.Second},
				},
				SLAs: []scenario.SLA{
					{Name: "healthy before the fault", During: "baseline", Expect: "success_rate >= 99.9% and p90 < 100ms"},
					{Name: "still serving during the fault", During: "fault", Expect: "success_rate >= 99% and p50 < 400ms"},
					{Name: "the fault really slowed requests", During: "fault", Expect: "p90 > 250ms"},
					{Name: "the slowdown showed within 2 s of the fault starting", Expect: "time_to(p90 > 250ms) < 2s"},
					{Name: "recovered within 5 s of the fault ending, and stayed so for 3 s", Expect: "recovery_time(success_rate >= 99.9% and p90 < 100ms, hold=3s) < 5s"},
					{Name: "back to normal after the fault", During: "recovery", Expect: "success_rate >= 99.9% and p90 < 100ms"},
					{Name: "the proxy's metrics counted the delays it injected", Expect: "increase(proxy:resctl_fault_injected_total) > 100"},
				},
				Scrape: scenario.Scrape{Interval: time.Second},
				Output: scenario.Output{Dir: "resctl-out", Formats: []string{"json", "html"}},
				File:   "../testdata/scenarios/quickstart.yaml",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := scenario.ReadFile(tt.path)
			if err != nil {
				t.Fatalf("ReadFile(%q): %v", tt.path, err)
			}
			checkExprs(t, got)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ReadFile(%q) =\n%s\nwant\n%s", tt.path, describe(got), describe(tt.want))
			}
		})
	}
}

func TestScenario_Duration(t *testing.T) {
	s, err := scenario.ReadFile("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Duration(), 2*time.Minute+15*time.Second; got != want {
		t.Errorf("Duration() = %v, want %v", got, want)
	}
}

func TestFault_Kind(t *testing.T) {
	s, err := scenario.ReadFile("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range s.Phases[1].Faults {
		got = append(got, f.Kind())
	}
	if want := []string{"abort", "abort", "latency", "latency"}; !reflect.DeepEqual(got, want) {
		t.Errorf("fault kinds = %q, want %q", got, want)
	}
}

func TestReadFile_missing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	s, err := scenario.ReadFile(path)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadFile(%q) = %v, %v; want an error satisfying errors.Is(err, fs.ErrNotExist)", path, s, err)
	}
	var ve *scenario.ValidationError
	if errors.As(err, &ve) {
		t.Errorf("ReadFile of a missing file returned a *ValidationError: %v", err)
	}
}

// checkExprs checks that every SLA came back with its expression parsed, then
// clears Expr so the scenario can be compared as plain data.
func checkExprs(t *testing.T, s *scenario.Scenario) {
	t.Helper()
	for i := range s.SLAs {
		sla := &s.SLAs[i]
		if sla.Expr == nil {
			t.Errorf("slas[%d].Expr is nil", i)
			continue
		}
		if got := sla.Expr.String(); got != sla.Expect {
			t.Errorf("slas[%d].Expr.String() = %q, want %q", i, got, sla.Expect)
		}
		sla.Expr = nil
	}
}

// describe prints a scenario one section a line, with the fault specs
// spelled out rather than as pointers.
func describe(s *scenario.Scenario) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  name=%q description=%q seed=%d file=%q\n", s.Name, s.Description, s.Seed, s.File)
	fmt.Fprintf(&b, "  target=%+v\n  proxy=%+v\n  load=%+v\n", s.Target, s.Proxy, s.Load)
	for i, p := range s.Phases {
		fmt.Fprintf(&b, "  phases[%d] name=%q duration=%v\n", i, p.Name, p.Duration)
		for j, f := range p.Faults {
			fmt.Fprintf(&b, "    faults[%d] %s %#v\n", j, f.ID, f.Spec)
		}
	}
	for i, sla := range s.SLAs {
		fmt.Fprintf(&b, "  slas[%d]=%+v\n", i, sla)
	}
	fmt.Fprintf(&b, "  output=%+v", s.Output)
	return b.String()
}

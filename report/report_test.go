package report

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"charm.land/lipgloss/v2"
)

var update = flag.Bool("update", false, "rewrite golden files")

// fixture is a fixed report: two phases, one fault, a passing and a failing
// SLA, so every part of every format is exercised.
func fixture() *Report {
	return &Report{
		Schema:    Schema,
		Scenario:  "golden",
		File:      "testdata/golden.yaml",
		Version:   "v0.0.0-test",
		Seed:      42,
		Target:    "builtin demo (http://127.0.0.1:8080)",
		StartedAt: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC),
		DurationS: 20,
		Passed:    false,
		Phases: []Phase{
			{Name: "baseline", StartS: 0, EndS: 10, Requests: 500, Successes: 500, SuccessRate: 1, RPS: 50,
				LatencyMs: Latency{Min: 1.2, Mean: 8, P50: 6.5, P90: 14.5, P95: 18.6, P99: 27.7, P999: 89, Max: 89},
				Codes:     map[string]uint64{"200": 500}},
			{Name: "fault", StartS: 10, EndS: 20, Requests: 500, Successes: 350, Errors: 150, SuccessRate: 0.7, RPS: 50,
				LatencyMs: Latency{Min: 1.3, Mean: 150, P50: 17.6, P90: 321, P95: 326, P99: 356.3, P999: 454.7, Max: 1454.7},
				Codes:     map[string]uint64{"200": 350, "503": 150}},
		},
		Total: Phase{StartS: 0, EndS: 20, Requests: 1000, Successes: 850, Errors: 150, SuccessRate: 0.85, RPS: 50,
			LatencyMs: Latency{Min: 1.2, Mean: 79, P50: 7.5, P90: 303, P95: 320, P99: 350, P999: 454.7, Max: 1454.7}},
		SLAs: []SLA{
			{Name: "healthy before", Expect: "success_rate >= 99.9% and p99 < 150ms", During: "baseline", Passed: true,
				Observed: "success_rate=100%, p99=27.7ms", Values: map[string]float64{"success_rate": 1, "p99": 0.0277}},
			{Name: "success_rate >= 99%", Expect: "success_rate >= 99%", During: "fault", Passed: false,
				Observed: "success_rate=70%", Values: map[string]float64{"success_rate": 0.7}},
		},
		Faults: []Fault{{ID: "fault/abort", Kind: "abort", Phase: "fault", Config: map[string]any{"percent": "30%", "status": 503},
			Matched: 500, Injected: 150, ConfiguredRate: 0.3, EffectiveRate: 0.3, Fired: true, StartS: 10, EndS: 20}},
		Events: []Event{{AtS: 0, Source: "phase", Kind: "start", Detail: "baseline"}, {AtS: 10, Source: "fault", Kind: "on", Detail: "fault/abort"}},
		Series: []Second{{T: 0, Requests: 50, Successes: 50, P50Ms: 6, P95Ms: 17, P99Ms: 20, MaxMs: 21}},
		Run:    RunResources{Sent: 1000, Scheduled: 1000, PeakRSSBytes: 30 << 20},
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden file; run go test ./report -update and review the diff\n--- got ---\n%s", name, got)
	}
}

func TestWriteJSON_Golden(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, fixture()); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.golden.json", b.Bytes())
}

func TestReadJSON_RoundTrip(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, fixture()); err != nil {
		t.Fatal(err)
	}
	r, err := ReadJSON(&b)
	if err != nil {
		t.Fatal(err)
	}
	if r.Scenario != "golden" || len(r.Phases) != 2 || r.Phases[1].Codes["503"] != 150 || r.SLAs[1].Passed {
		t.Errorf("round trip lost data: %+v", r)
	}
}

func TestReadJSON_Rejects(t *testing.T) {
	tests := []struct {
		name, in, wantMsg string
	}{
		{"not json", "hello", "not a resctl report"},
		{"no schema", `{"scenario":"x"}`, "no schema field"},
		{"newer schema", `{"schema":"resctl.report/v2"}`, "newer than this resctl reads"},
		{"foreign schema", `{"schema":"k6/summary"}`, `unknown schema "k6/summary"`},
		{"foreign json with clashing fields", `{"schema":"k6/summary","metrics":{}}`, `unknown schema "k6/summary"`},
		{"newer schema with changed fields", `{"schema":"resctl.report/v2","phases":{"a":1}}`, "newer than this resctl reads"},
		{"array", `[1,2]`, "a JSON array, not an object"},
		{"schema not a string", `{"schema":2}`, "schema field is a JSON number"},
		{"malformed v1", `{"schema":"resctl.report/v1","seed":"x"}`, "malformed resctl.report/v1 report"},
		{"empty", ``, "not JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadJSON(strings.NewReader(tt.in))
			if !errors.Is(err, ErrNotReport) {
				t.Fatalf("err = %v, want ErrNotReport", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("err = %q, want it to mention %q", err, tt.wantMsg)
			}
		})
	}
}

func TestWriteJSONFile_Atomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "nested", "report.json")
	if err := WriteJSONFile(path, fixture()); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "report.json" {
		t.Errorf("directory holds %v, want only report.json (no temp files left)", entries)
	}
}

func TestWriteTerminal_PlainGolden(t *testing.T) {
	var b bytes.Buffer
	if err := WriteTerminal(&b, fixture(), TerminalOptions{Paths: []string{"out/report.json"}}); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b.Bytes(), []byte("\x1b[")) {
		t.Error("plain output contains ANSI escape codes")
	}
	golden(t, "terminal.golden.txt", b.Bytes())
}

func TestWriteTerminal_Styled(t *testing.T) {
	var b bytes.Buffer
	if err := WriteTerminal(&b, fixture(), TerminalOptions{Styled: true}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.Contains(out, "\x1b[") {
		t.Error("styled output has no colour")
	}
	for _, want := range []string{"FAILED", "baseline", "fault/abort", "success_rate=70%"} {
		if !strings.Contains(out, want) {
			t.Errorf("styled output lacks %q", want)
		}
	}
}

func TestWriteTerminal_Verdicts(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Report)
		want   string
	}{
		{"passed", func(r *Report) { r.Passed = true }, "golden: PASSED"},
		{"failed", func(r *Report) {}, "golden: FAILED"},
		{"interrupted", func(r *Report) { r.Interrupted = true }, "golden: INTERRUPTED"},
		{"aborted", func(r *Report) { r.Aborted = "steady state not met after phase baseline" }, "aborted: steady state not met after phase baseline"},
		{"aborted verdict", func(r *Report) { r.Aborted = "x" }, "golden: ABORTED"},
		{"runtime fault", func(r *Report) {
			r.Faults = append(r.Faults, Fault{ID: "fault/goroutines", Kind: "goroutines", Layer: "runtime", Fired: true, StartS: 10, EndS: 15})
		}, "ran inside the target for 5.0s"},
		{"runtime fault that did not start", func(r *Report) {
			r.Faults = append(r.Faults, Fault{ID: "fault/cpu", Kind: "cpu", Layer: "runtime", Error: "agent: connection refused"})
		}, "did not start: agent: connection refused"},
		{"error", func(r *Report) { r.Error = "boom" }, "error: boom"},
		{"generator behind", func(r *Report) { r.Run.Sent, r.Run.GeneratorBehind = 900, true }, "load generator fell behind: it sent 900 of 1000"},
		{"behind: service and lag columns", func(r *Report) {
			r.Run.GeneratorBehind, r.Run.BehindReason = true, "1% of requests went out over 50ms late (p99 lag 80ms)"
			r.Phases[0].ServiceMs, r.Phases[0].LagMs = &Latency{P99: 12.5}, &Latency{P99: 80}
		}, "12.5ms"},
		{"behind: the reason", func(r *Report) {
			r.Run.GeneratorBehind, r.Run.BehindReason = true, "dropped 7 requests at the in-flight cap (load.max_in_flight)"
		}, "fell behind: dropped 7 requests at the in-flight cap"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := fixture()
			tt.change(r)
			var b bytes.Buffer
			if err := WriteTerminal(&b, r, TerminalOptions{}); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(b.String(), tt.want) {
				t.Errorf("output lacks %q:\n%s", tt.want, b.String())
			}
		})
	}
}

func TestNetworkFaultLine(t *testing.T) {
	plain := func(_ lipgloss.Style, s string) string { return s }
	tests := []struct {
		name string
		f    Fault
		want string
	}{
		{"not started", Fault{ID: "f/network", Kind: "network", Error: "needs root"}, "did not start: needs root"},
		{"nothing crossed", Fault{ID: "f/network", Kind: "network", StartS: 1, EndS: 3}, "on the link for 2.0s, no packets crossed it"},
		{"delay", Fault{ID: "f/network", Kind: "network", StartS: 1, EndS: 3, Matched: 88, Injected: 88, ConfiguredRate: 1, EffectiveRate: 1, Fired: true},
			"on the link for 2.0s, 88 packets met it"},
		{"loss", Fault{ID: "f/network", Kind: "network", StartS: 1, EndS: 3, Matched: 381, Injected: 72, ConfiguredRate: 0.2, EffectiveRate: 72.0 / 381, Fired: true},
			"dropped 72 of 381 packets (18.9%; configured 20%)"},
		{"loss that dropped nothing", Fault{ID: "f/network", Kind: "network", StartS: 1, EndS: 3, Matched: 17, ConfiguredRate: 0.05},
			"dropped 0 of 17 packets (0.0%; configured 5%)  never fired"},
		{"flapping", Fault{ID: "f/network", Kind: "network", StartS: 1, EndS: 4.9, OnS: 2, Matched: 51, Injected: 51, ConfiguredRate: 1, Fired: true},
			"on the link for 2.0s, 51 packets met it"},
		{"error while on", Fault{ID: "f/network", Kind: "network", StartS: 1, EndS: 3, Matched: 9, Injected: 9, ConfiguredRate: 1, Fired: true, Error: "counting its packets: boom"},
			"9 packets met it; error: counting its packets: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := networkFaultLine(tt.f, 9, 7, plain); !strings.Contains(got, tt.want) {
				t.Errorf("line %q, want it to contain %q", got, tt.want)
			}
		})
	}
}

// A fault of a phase the run never reached is listed as not run, in every
// format, never as one that never fired, and the timeline draws no window
// for it.
func TestWrite_NotRunFault(t *testing.T) {
	r := fixture()
	r.Aborted = `steady state not met after phase baseline: "healthy before"`
	r.Reached = "phase baseline"
	r.Phases[1] = Phase{Name: "fault", StartS: 10, EndS: 20, NotRun: true}
	r.Faults = []Fault{{ID: "fault/latency", Kind: "latency", Proxy: "proxy", Layer: "http", Phase: "fault",
		Config: map[string]any{"delay": "1s"}, NotRun: true, StartS: 10, EndS: 20}}
	tests := []struct {
		format Format
		want   string
	}{
		{FormatMarkdown, "| fault/latency | latency | fault | not run | – | – |"},
		{FormatHTML, "<td>fault/latency</td><td>latency</td><td>fault</td><td>not run</td>"},
	}
	for _, tt := range tests {
		t.Run(string(tt.format), func(t *testing.T) {
			var b bytes.Buffer
			if err := Write(&b, tt.format, r); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(b.String(), tt.want) {
				t.Errorf("output lacks %q:\n%s", tt.want, b.String())
			}
			if strings.Contains(b.String(), "fault/latency on") {
				t.Errorf("the timeline draws the window of a fault that was not run")
			}
		})
	}
	var b bytes.Buffer
	if err := WriteTerminal(&b, r, TerminalOptions{}); err != nil {
		t.Fatal(err)
	}
	if want := "fault/latency  latency  not run: the run stopped before phase fault"; !strings.Contains(b.String(), want) || strings.Contains(b.String(), "never fired") {
		t.Errorf("terminal output lacks %q or says never fired:\n%s", want, b.String())
	}
}

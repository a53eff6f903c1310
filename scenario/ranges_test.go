package scenario_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/resctl/resctl/scenario"
)

// Ports, durations and rates out of range are validation problems, placed
// on their value, wherever the file gives them.
func TestParse_ranges(t *testing.T) {
	const load = "load: {rate: 5/s, requests: [{path: /}]}\n"
	const phases = "phases: [{name: a, duration: 1s}]\n"
	tests := []struct {
		name, src string
		want      []string
	}{
		{
			name: "ports of the target",
			src:  "name: t\ntarget:\n  url: http://127.0.0.1:70000\n  command: [x]\n  ready: 127.0.0.1:0\n  agent: http://127.0.0.1:65536/resctl\n" + load + phases,
			want: []string{
				"3:8: target.url: port 70000 is outside 1–65535",
				"5:10: target.ready: port 0 is outside 1–65535",
				"6:10: target.agent: port 65536 is outside 1–65535",
			},
		},
		{
			name: "ports of proxies, services and scrape endpoints",
			src: "name: t\ntarget: {builtin: demo}\nservices: [{name: db, command: [x], ready: 'http://127.0.0.1:99999/'}]\n" +
				"proxy: {listen: '127.0.0.1:70000', admin: '127.0.0.1:0'}\nproxies: {db: {upstream: 'http://127.0.0.1:1', admin: ':-1'}}\n" +
				"scrape: {endpoints: {x: 'http://127.0.0.1:0/metrics'}}\n" + load + phases,
			want: []string{
				"3:44: services[0].ready: port 99999 is outside 1–65535",
				"4:17: proxy.listen: port 70000 is outside 1–65535 (or 0 for a free port)",
				"5:55: proxies.db.admin: port -1 is outside 1–65535 (or 0 for a free port)",
				"6:25: scrape.endpoints.x: port 0 is outside 1–65535",
			},
		},
		{
			name: "an upstream's port",
			src:  "name: t\ntarget: {builtin: demo}\nproxies: {db: {protocol: tcp, upstream: '127.0.0.1:70000'}}\n" + load + phases,
			want: []string{`3:41: proxies.db.upstream: "127.0.0.1:70000": port 70000 is not a number in 1..65535`},
		},
		{
			name: "durations over a week",
			src:  "name: t\ntarget: {builtin: demo}\nload: {rate: 5/s, timeout: 169h, requests: [{path: /}]}\nphases: [{name: a, duration: 10000h}]\n",
			want: []string{
				"3:28: load.timeout: duration 169h is over the maximum of 168h",
				"4:30: phases[0].duration: duration 10000h is over the maximum of 168h",
			},
		},
		{
			name: "rates beyond what resctl sends",
			src: "name: t\ntarget: {builtin: demo}\nload: {rate: 2000000/s, requests: [{path: /}]}\n" +
				"phases:\n  - {name: a, duration: 1s, rate: {ramp: {from: 1/s, to: 1e7/s}}}\n  - {name: b, duration: 1s, rate: {steps: [1/s, 120000000/min]}}\n",
			want: []string{
				"3:14: load.rate: 2000000/s is more than resctl can send: at most 1000000/s, as its pacer times each request to the microsecond",
				"5:58: phases[0].rate.ramp.to: 10000000/s is more than resctl can send",
				"6:49: phases[1].rate.steps[1]: 2000000/s is more than resctl can send",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := scenario.Parse("bad.yaml", []byte(tt.src))
			var ve *scenario.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Parse error = %v, want a *scenario.ValidationError", err)
			}
			if !matchProblems(t, ve.Problems, tt.want) {
				t.Errorf("source:\n%s\ngot problems:\n%s\nwant:\n  %s", tt.src, listProblems(ve.Problems), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

// A runtime fault of the built-in target lasts its phase and a grace; a
// phase past the agent's cap on a fault's TTL is refused before it starts.
func TestParse_runtimeFaultTTL(t *testing.T) {
	src := "name: t\ntarget: {builtin: demo}\nload: {rate: 5/s, requests: [{path: /}]}\nphases:\n  - name: a\n    duration: 10m\n    faults: [gc: {interval: 1s}]\n"
	_, err := scenario.Parse("bad.yaml", []byte(src))
	var ve *scenario.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Parse error = %v, want a *scenario.ValidationError", err)
	}
	want := []string{"7:18: phases[0].faults[0].gc: lasts its phase and 5s more, 10m5s, over the agent's cap on a fault's TTL of 10m0s"}
	if !matchProblems(t, ve.Problems, want) {
		t.Errorf("got problems:\n%s\nwant:\n  %s", listProblems(ve.Problems), strings.Join(want, "\n  "))
	}
	if _, err := scenario.Parse("ok.yaml", []byte(strings.Replace(src, "10m", "9m55s", 1))); err != nil {
		t.Errorf("a phase whose runtime fault ends at the cap: %v", err)
	}
}

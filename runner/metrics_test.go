package runner

import (
	"testing"

	"github.com/resctl/resctl/scrape"
)

func TestKept(t *testing.T) {
	tests := map[string]bool{
		"go_goroutines":                           true,
		"resctl_guard_state":                      true,
		"resctl_guard_hedges_total":               true,
		"resctl_guard_hedge_delay_seconds_bucket": false,
		"resctl_proxy_upstream_requests_total":    true,
		"resctl_proxy_grpc_calls_total":           true,
		"demo_http_requests_total":                false,
	}
	for name, want := range tests {
		if got := kept(name); got != want {
			t.Errorf("kept(%q) = %v, want %v", name, got, want)
		}
	}
}

// The report keeps every series an SLA reads, whatever its labels, so a
// merge with the coordinator's report can judge the SLA again.
func TestReadBySLA(t *testing.T) {
	s := mustParse(t, `
name: reads the target's own series
target: {builtin: demo}
load: {rate: 5/s, requests: [{path: /}]}
phases: [{name: only, duration: 1s}]
slas:
  - expect: increase(target:demo_http_requests_total{code="200"}) > 0
`)
	read := readBySLA(s)
	tests := []struct {
		sr   scrape.Series
		want bool
	}{
		{scrape.Series{Source: "target", Name: "demo_http_requests_total", Labels: map[string]string{"code": "500"}}, true},
		{scrape.Series{Source: "proxy", Name: "demo_http_requests_total"}, false},
		{scrape.Series{Source: "target", Name: "demo_http_in_flight_requests"}, false},
	}
	for _, tt := range tests {
		if got := read(tt.sr); got != tt.want {
			t.Errorf("readBySLA(%s:%s) = %v, want %v", tt.sr.Source, tt.sr.Name, got, tt.want)
		}
	}
}

// The scraper keeps what the report keeps, what an SLA reads and what a
// panel charts; nothing else.
func TestKeepSeries(t *testing.T) {
	const sla = `
slas:
  - expect: increase(target:demo_http_requests_total{code="200"}) > 0
`
	tests := []struct {
		name, scenario string
		source, metric string
		want           bool
	}{
		{"kept by every report", "", "proxy", "go_goroutines", true},
		{"a guard's series", "", "db", "resctl_guard_state", true},
		{"read by an SLA", sla, "target", "demo_http_requests_total", true},
		{"read by an SLA, but of another source", sla, "proxy", "demo_http_requests_total", false},
		{"a panel of the scenario", "scrape: {panels: [proxy:go_memstats_heap_sys_bytes]}\n", "proxy", "go_memstats_heap_sys_bytes", true},
		{"a panel's metric from another source", "scrape: {panels: [proxy:go_memstats_heap_sys_bytes]}\n", "target", "go_memstats_heap_sys_bytes", false},
		{"read by nothing", "", "target", "go_gc_duration_seconds", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustParse(t, `
name: keep
target: {builtin: demo}
load: {rate: 5/s, requests: [{path: /}]}
phases: [{name: only, duration: 1s}]
`+tt.scenario)
			if got := keepSeries(s)(tt.source, tt.metric); got != tt.want {
				t.Errorf("keepSeries(%s:%s) = %v, want %v", tt.source, tt.metric, got, tt.want)
			}
		})
	}
}

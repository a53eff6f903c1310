package runner

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/resctl/resctl/load"
)

// gRPC end to end: the demo target's Orders service behind a grpc proxy,
// unary and server-streaming calls, gRPC faults per phase and SLAs over
// them.
func TestRun_GRPC(t *testing.T) {
	tests := []struct {
		name, load, guard, faults, slas string
	}{
		{
			name:   "unary with an abort",
			load:   "{call: resctl.demo.v1.Orders/GetOrder, data: {id: 7}, metadata: {x-team: a}}",
			faults: "[abort: {code: RESOURCE_EXHAUSTED, method: /resctl.demo.v1.Orders/GetOrder}]",
			slas: `
  - {during: baseline, expect: success_rate == 100%}
  - {during: fault, expect: error_rate == 100%}
  - {during: recovery, expect: success_rate == 100%}
  - {expect: 'increase(proxy:resctl_proxy_grpc_calls_total{grpc_code="ResourceExhausted"}) >= 40'}`,
		},
		{
			name:   "a fallback answers while the upstream fails",
			load:   "{call: resctl.demo.v1.Orders/GetOrder, data: {id: 7}}",
			guard:  "[fallback: {}]",
			faults: "[abort: {code: UNAVAILABLE, method: /resctl.demo.v1.Orders/GetOrder}]",
			slas: `
  - {during: baseline, expect: success_rate == 100% and fallback_rate == 0}
  - {during: fault, expect: success_rate == 100% and fallback_rate == 100% and upstream_success_rate == 0}
  - {during: recovery, expect: upstream_success_rate == 100%}`,
		},
		{
			name:   "server streaming with an error after two messages",
			load:   "{call: resctl.demo.v1.Orders/ListOrders, data: {limit: 5}}",
			faults: "[stream_error: {after: 2, code: UNAVAILABLE}]",
			slas: `
  - {during: baseline, expect: success_rate == 100%}
  - {during: fault, expect: error_rate == 100%}
  - {during: recovery, expect: success_rate == 100%}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proxy := ""
			if tt.guard != "" {
				proxy = "proxy: {guard: " + tt.guard + "}\n"
			}
			s := mustParse(t, `
name: grpc
seed: 1
target: {builtin: demo}
`+proxy+`load:
  rate: 40/s
  grpc: `+tt.load+`
phases:
  - {name: baseline, duration: 1s}
  - {name: fault, duration: 1s, faults: `+tt.faults+`}
  - {name: recovery, duration: 1s}
slas:`+tt.slas+"\n")
			results := filepath.Join(t.TempDir(), "results.bin")
			r, err := Run(context.Background(), s, Options{Results: results})
			if err != nil {
				t.Fatal(err)
			}
			for _, sla := range r.SLAs {
				if !sla.Passed {
					t.Errorf("SLA %q failed: observed %s %s", sla.Expect, sla.Observed, sla.Error)
				}
			}
			if got := r.Total.Requests; got != 120 {
				t.Errorf("%d calls recorded, want the 120 scheduled", got)
			}
			// The saved results are vegeta's: the method as the URL, the
			// status mapped to HTTP's.
			saved, err := load.ReadResults(results)
			if err != nil {
				t.Fatal(err)
			}
			codes := map[uint16]int{}
			for _, res := range saved {
				codes[res.Code]++
				if res.URL == "" || res.Method != "POST" {
					t.Fatalf("saved result %+v: want the method as the URL, POST", res)
				}
			}
			if tt.guard != "" {
				if codes[200] != 120 || len(codes) != 1 {
					t.Errorf("saved codes %v, want 120 × 200: the fallback answered the failures", codes)
				}
			} else if codes[200] != 80 || len(codes) != 2 {
				t.Errorf("saved codes %v, want 80 × 200 and 40 failures", codes)
			}
		})
	}
}

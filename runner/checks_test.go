package runner

import (
	"context"
	"testing"

	"github.com/resctl/resctl/report"
)

// A truncated or corrupted body is a well-formed HTTP 200: only the
// response checks tell it failed, and the report says which check.
func TestRun_ResponseChecksCountFailuresWithReasons(t *testing.T) {
	s := mustParse(t, `
name: checks
target: {builtin: demo}
load:
  rate: 40/s
  requests:
    - path: /api/users/1
      expect:
        status: [200]
        headers: {Content-Type: {matches: ^application/json}}
        body_size: {min: 20B}
        json: {id: 1, /name: Alan Turing}
phases:
  - {name: baseline, duration: 1s}
  - name: truncated
    duration: 1s
    faults: [truncate: {path: /api/users/1, bytes: 10}]
  - name: corrupted
    duration: 1s
    faults: [corrupt: {path: /api/users/1, rate: 100%}]
slas:
  - {name: clean baseline, during: baseline, expect: success_rate == 100%}
`)
	r, err := Run(context.Background(), s, Options{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	for i, want := range []float64{1, 0, 0} {
		if p := r.Phases[i]; p.SuccessRate != want || p.Requests != 40 {
			t.Errorf("phase %s: success %v of %d requests, want %v of 40", p.Name, p.SuccessRate, p.Requests, want)
		}
	}
	want := []report.ErrorReason{
		{Kind: "check", Reason: "body is not JSON", Phases: []uint64{0, 0, 40}, Total: 40},
		{Kind: "check", Reason: "body size under 20B", Phases: []uint64{0, 40, 0}, Total: 40},
	}
	if len(r.ErrorReasons) != len(want) {
		t.Fatalf("error reasons = %+v, want %+v", r.ErrorReasons, want)
	}
	for i, w := range want {
		g := r.ErrorReasons[i]
		if g.Kind != w.Kind || g.Reason != w.Reason || g.Total != w.Total || len(g.Phases) != 3 ||
			g.Phases[0] != w.Phases[0] || g.Phases[1] != w.Phases[1] || g.Phases[2] != w.Phases[2] {
			t.Errorf("error reason %d = %+v, want %+v", i, g, w)
		}
	}
}

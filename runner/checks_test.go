package runner

import (
	"context"
	"testing"
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
	// A busy machine may send a phase's last requests too late to count
	// (the run ends on schedule), so each phase is judged by the
	// requests it sent: every one of them passed, or failed its checks.
	sent := make([]uint64, len(r.Phases))
	for i, want := range []float64{1, 0, 0} {
		p := r.Phases[i]
		sent[i] = p.Requests
		if p.SuccessRate != want || p.Requests == 0 || p.Requests > 40 {
			t.Errorf("phase %s: success %v of %d requests, want %v of up to 40", p.Name, p.SuccessRate, p.Requests, want)
		}
	}
	want := map[string][]uint64{
		"body is not JSON":    {0, 0, sent[2]},
		"body size under 20B": {0, sent[1], 0},
	}
	if len(r.ErrorReasons) != len(want) {
		t.Fatalf("error reasons = %+v, want %v", r.ErrorReasons, want)
	}
	for _, g := range r.ErrorReasons {
		w, ok := want[g.Reason]
		if !ok || g.Kind != "check" || len(g.Phases) != 3 || g.Total != w[0]+w[1]+w[2] ||
			g.Phases[0] != w[0] || g.Phases[1] != w[1] || g.Phases[2] != w[2] {
			t.Errorf("error reason %+v, want kind check and by phase %v of %v", g, w, want)
		}
	}
}

package runner

import (
	"testing"
	"time"

	"github.com/resctl/resctl/record"
	"github.com/resctl/resctl/verify"
)

// TestRunEnv_FineTimeTo: time_to on a ratio of the load reads the
// recording's tenths of a second, so a fallback that starts answering at
// 2.63 s is detected in the tenth from 2.6 s, not in the second from 3 s.
func TestRunEnv_FineTimeTo(t *testing.T) {
	start := time.Unix(1000, 0)
	spans := []record.PhaseSpan{{Name: "a", Start: 0, End: 2 * time.Second}, {Name: "b", Start: 2 * time.Second, End: 4 * time.Second}}
	rec := record.NewRecorder(start, spans, time.Second)
	for at := time.Duration(0); at < 4*time.Second; at += 5 * time.Millisecond { // 200 a second
		rec.Add(record.Result{Sent: start.Add(at), Latency: time.Millisecond, Code: 200, Fallback: at >= 2630*time.Millisecond})
	}
	env := newRunEnv(rec, rec.Snapshot(), spans, 4*time.Second, nil, nil)
	b, _ := env.Phase("b")
	for _, tt := range []struct {
		expect string
		at     time.Duration
	}{
		{"time_to(fallback_rate > 50%, from: b) < 1s", 2600 * time.Millisecond},
		{"time_to(upstream_success_rate < 50%, from: b) < 1s", 2600 * time.Millisecond},
		// A latency in the condition keeps it to the second.
		{"time_to(fallback_rate > 50% and p99 < 1s, from: b) < 2s", 3 * time.Second},
	} {
		e, err := verify.Parse(tt.expect)
		if err != nil {
			t.Fatal(err)
		}
		res, err := e.Check(env, verify.Scope{Window: env.Run(), DetectFrom: b, RecoverFrom: b})
		if err != nil || !res.Passed || res.At == nil || *res.At != tt.at {
			t.Errorf("%s: passed %v, at %v, observed %s, err %v; want passed at %v", tt.expect, res.Passed, res.At, res.Observed, err, tt.at)
		}
	}
}

package load_test

import (
	"context"
	"testing"
	"time"

	"github.com/resctl/resctl/load"
	"github.com/resctl/resctl/record"
)

// capSteps is a schedule fast enough (1000/s) that without the in-flight
// cap hundreds of requests would be in flight by the time a test looks.
var capSteps = []load.Step{{Name: "only", Duration: 10 * time.Second, Rate: 1000}}

// checkCapHolds starts run, a load over capSteps with MaxInFlight limit
// against a target that answers nothing until its context ends, and
// checks that limit requests arrive and no more, and that run returns,
// interrupted, once cancelled. arrived and peak are the target's counts
// of requests that arrived and the most in flight at once; what names
// them in messages ("requests", "calls").
func checkCapHolds(t *testing.T, limit int64, arrived, peak func() int64, what string, run func(ctx context.Context) load.Stats) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan load.Stats, 1)
	go func() { done <- run(ctx) }()

	// Wait for the cap to fill, then for a stretch of the schedule worth a
	// hundred more. Timing only decides how hard the cap is tested: with
	// the cap working no further one can arrive, however slow the machine.
	guard := time.After(hangGuard)
	for arrived() < limit {
		select {
		case <-guard:
			t.Fatalf("only %d %s arrived", arrived(), what)
		case <-time.After(time.Millisecond):
		}
	}
	time.Sleep(100 * time.Millisecond)
	if got := arrived(); got != limit {
		t.Errorf("%d %s arrived with MaxInFlight %d and none answered", got, what, limit)
	}
	cancel()
	select {
	case st := <-done:
		if !st.Interrupted {
			t.Error("Stats.Interrupted = false after cancel")
		}
	case <-guard:
		t.Fatal("the load did not return after cancel")
	}
	if p := peak(); p > limit {
		t.Errorf("%d %s in flight at once, want at most %d", p, what, limit)
	}
}

// checkAtCap checks a second of 40/s against a target taking 100 ms, with
// two slots: dropping at the cap drops many, and waiting drops none but
// falls behind, which the response times (from when each was due) show
// and the service times do not.
func checkAtCap(t *testing.T, st load.Stats, ph record.Summary, wait bool) {
	t.Helper()
	if !wait {
		// Two slots, 100 ms each, over one second: at most ~22 sent.
		if st.Dropped < 10 {
			t.Errorf("dropped %d of 40 with room for about 20", st.Dropped)
		}
		return
	}
	if st.Dropped != 0 {
		t.Errorf("dropped %d while waiting at the cap", st.Dropped)
	}
	if ph.Latency.P99 < 3*ph.Service.P99 || ph.Lag.Max < 300*time.Millisecond {
		t.Errorf("response p99 %v, service p99 %v, lag max %v: the wait at the cap does not show", ph.Latency.P99, ph.Service.P99, ph.Lag.Max)
	}
}

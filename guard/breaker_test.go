package guard_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/resctl/resctl/guard"
)

func newBreaker(t *testing.T, clk *fakeClock, ev *events, seed uint64, edit func(*guard.BreakerConfig)) *guard.Breaker {
	t.Helper()
	c := guard.DefaultBreakerConfig()
	c.Window = guard.Window{Calls: 10}
	c.MinCalls = 5
	c.OpenFor = time.Second
	c.Backoff = guard.BackoffConfig{Multiplier: 2, Max: time.Minute, Jitter: 20}
	c.HalfOpen = guard.HalfOpenConfig{Probes: 2, Successes: 2}
	if edit != nil {
		edit(&c)
	}
	o := guard.Options{Clock: clk, Seed: seed}
	if ev != nil {
		o.Observer = ev
	}
	b, err := guard.NewBreaker("orders", c, o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBreaker_Trips(t *testing.T) {
	F, S, W := fail, ok200, slowOK
	tests := []struct {
		name     string
		edit     func(*guard.BreakerConfig)
		outcomes []guard.Outcome
		tripAt   int // 1-based call after which it opens; 0: never
	}{
		{"failures below min_calls never trip", nil, []guard.Outcome{F, F, F, F}, 0},
		{"failure rate judged once min_calls is reached", nil, []guard.Outcome{F, F, F, F, S}, 5},
		{"failure rate below the threshold", nil, []guard.Outcome{F, S, S, F, S, S, F, S, S, F}, 0},
		{"failure rate exactly at the threshold", func(c *guard.BreakerConfig) { c.MinCalls = 10 },
			[]guard.Outcome{S, F, S, F, S, F, S, F, S, F}, 10},
		{"4xx are not failures", nil, repeat(guard.Outcome{Status: 404}, 10), 0},
		{"failure rate 0 turns the check off", func(c *guard.BreakerConfig) { c.FailureRate = 0 }, repeat(F, 10), 0},
		{"slow-call rate", func(c *guard.BreakerConfig) {
			c.MinCalls = 4
			c.SlowCall = guard.SlowCallConfig{Over: 100 * time.Millisecond, Rate: 50}
		}, []guard.Outcome{W, S, S, W}, 4},
		{"slow calls ignored without a threshold", nil, repeat(W, 10), 0},
		{"consecutive failures trip before min_calls", func(c *guard.BreakerConfig) {
			c.FailureRate, c.MinCalls, c.Window, c.ConsecutiveFailures = 0, 100, guard.Window{Calls: 100}, 3
		}, []guard.Outcome{F, F, S, F, F, F}, 6},
		{"a success breaks the run", func(c *guard.BreakerConfig) {
			c.FailureRate, c.ConsecutiveFailures = 0, 3
		}, []guard.Outcome{F, F, S, F, F, S, F, F, S}, 0},
		{"count window forgets old failures", func(c *guard.BreakerConfig) {
			c.Window, c.MinCalls, c.FailureRate = guard.Window{Calls: 4}, 4, 75
		}, []guard.Outcome{F, F, S, S, S, S, S, F, F, S, F}, 11},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			b := newBreaker(t, clk, nil, 1, tt.edit)
			for i, o := range tt.outcomes {
				if err := call(t, b, o); err != nil {
					t.Fatalf("call %d rejected: %v", i+1, err)
				}
				wantOpen := tt.tripAt > 0 && i+1 >= tt.tripAt
				if open := b.State() == "open"; open != wantOpen {
					t.Fatalf("after call %d: state %s, want open=%v", i+1, b.State(), wantOpen)
				}
			}
		})
	}
}

func repeat(o guard.Outcome, n int) []guard.Outcome {
	out := make([]guard.Outcome, n)
	for i := range out {
		out[i] = o
	}
	return out
}

func TestBreaker_TimeWindowEvicts(t *testing.T) {
	clk := newFakeClock()
	b := newBreaker(t, clk, nil, 1, func(c *guard.BreakerConfig) {
		c.Window = guard.Window{Duration: 3 * time.Second}
		c.MinCalls = 4
	})
	// Three failures, then a second of quiet each: by the time the fourth
	// call comes, the first failures have left the three-second window.
	for range 3 {
		if err := call(t, b, fail); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(3 * time.Second)
	for i := range 3 {
		if err := call(t, b, ok200); err != nil {
			t.Fatal(err)
		}
		if b.State() != "closed" {
			t.Fatalf("call %d after the failures left the window opened the breaker", i+1)
		}
	}
	// Failures within the window count: 2 of 5 calls at 2.9s apart do not
	// trip 50%, a third does.
	clk.Advance(2900 * time.Millisecond)
	call(t, b, fail)
	call(t, b, fail)
	if b.State() != "closed" {
		t.Fatalf("2 of 5 failed: state %s, want closed", b.State())
	}
	call(t, b, fail)
	if b.State() != "open" {
		t.Fatalf("3 of 6 failed in the window: state %s, want open", b.State())
	}
}

func TestBreaker_OpenHalfOpenClosed(t *testing.T) {
	clk := newFakeClock()
	ev := newEvents(clk)
	b := newBreaker(t, clk, ev, 1, nil)
	for range 5 {
		call(t, b, fail)
	}
	if b.State() != "open" {
		t.Fatalf("state %s after 5 failures, want open", b.State())
	}

	clk.Advance(400 * time.Millisecond)
	rej := rejected(t, call(t, b, ok200), guard.ErrOpen, "open")
	if rej.RetryAfter != 600*time.Millisecond || rej.Status != 503 || rej.Policy != "orders" {
		t.Errorf("rejection = %+v, want 503 with RetryAfter 600ms from orders", rej)
	}

	clk.Advance(600 * time.Millisecond)
	p1, err := b.Acquire(t.Context(), nil)
	if err != nil {
		t.Fatalf("first call after open_for: %v", err)
	}
	if b.State() != "half_open" {
		t.Fatalf("state %s, want half_open", b.State())
	}
	p2, err := b.Acquire(t.Context(), nil)
	if err != nil {
		t.Fatalf("second probe: %v", err)
	}
	_, err = b.Acquire(t.Context(), nil)
	rejected(t, err, guard.ErrOpen, "half_open_full")

	b.Release(p1, ok200)
	if b.State() != "half_open" {
		t.Fatalf("one success of two: state %s, want half_open", b.State())
	}
	clk.Advance(time.Second)
	b.Release(p2, ok200)
	if b.State() != "closed" {
		t.Fatalf("two successes: state %s, want closed", b.State())
	}
	// The closed breaker starts a fresh window.
	for range 4 {
		call(t, b, fail)
	}
	if b.State() != "closed" {
		t.Errorf("4 failures in a fresh window tripped the breaker")
	}
	ev.want(t, "closed→open @0s", "open→half_open @1s", "half_open→closed @2s")

	st := b.Stats()
	if st.Rejected["open"] != 1 || st.Rejected["half_open_full"] != 1 || st.Transitions["half_open→closed"] != 1 {
		t.Errorf("stats = %+v", st)
	}
}

// reopenWaits fails the probe n times and returns each open wait.
func reopenWaits(t *testing.T, seed uint64, n int, edit func(*guard.BreakerConfig)) []time.Duration {
	t.Helper()
	clk := newFakeClock()
	b := newBreaker(t, clk, nil, seed, edit)
	for range 5 {
		call(t, b, fail)
	}
	var waits []time.Duration
	wait := time.Second // the first open is exactly open_for
	for range n {
		clk.Advance(wait)
		if err := call(t, b, fail); err != nil {
			t.Fatalf("probe rejected: %v", err)
		}
		var rej *guard.Rejection
		if !errors.As(call(t, b, ok200), &rej) {
			t.Fatal("failed probe did not reopen the breaker")
		}
		wait = rej.RetryAfter
		waits = append(waits, wait)
	}
	return waits
}

func TestBreaker_ProbeFailureBacksOff(t *testing.T) {
	waits := reopenWaits(t, 42, 4, nil)
	for i, w := range waits {
		base := time.Second << (i + 1)
		lo, hi := time.Duration(float64(base)*0.8), time.Duration(float64(base)*1.2)
		if w < lo || w > hi {
			t.Errorf("wait %d = %v, want %v ± 20%% (%v..%v)", i+1, w, base, lo, hi)
		}
	}
	if again := reopenWaits(t, 42, 4, nil); !slices.Equal(again, waits) {
		t.Errorf("same seed gave other waits: %v, then %v", waits, again)
	}
	if other := reopenWaits(t, 43, 4, nil); slices.Equal(other, waits) {
		t.Errorf("seeds 42 and 43 gave the same jitter: %v", waits)
	}

	capped := reopenWaits(t, 42, 3, func(c *guard.BreakerConfig) { c.Backoff.Max = 3 * time.Second })
	if capped[2] != 3*time.Second || capped[1] > 3*time.Second {
		t.Errorf("waits with max 3s = %v, want the third at exactly 3s", capped)
	}
	noJitter := reopenWaits(t, 42, 3, func(c *guard.BreakerConfig) { c.Backoff.Jitter = 0 })
	if want := []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second}; !slices.Equal(noJitter, want) {
		t.Errorf("waits without jitter = %v, want %v", noJitter, want)
	}
}

func TestBreaker_SuccessResetsBackoff(t *testing.T) {
	clk := newFakeClock()
	b := newBreaker(t, clk, nil, 1, func(c *guard.BreakerConfig) {
		c.Backoff.Jitter = 0
		c.HalfOpen = guard.HalfOpenConfig{Probes: 1, Successes: 1}
	})
	trip := func() {
		for range 5 {
			call(t, b, fail)
		}
	}
	trip()
	clk.Advance(time.Second)
	call(t, b, fail) // probe fails: 2s
	clk.Advance(2 * time.Second)
	call(t, b, ok200) // probe succeeds: closed
	if b.State() != "closed" {
		t.Fatalf("state %s, want closed", b.State())
	}
	trip()
	var rej *guard.Rejection
	errors.As(call(t, b, ok200), &rej)
	if rej == nil || rej.RetryAfter != time.Second {
		t.Errorf("open after a close: %v, want a plain open_for of 1s", rej)
	}
}

func TestBreaker_StaleAndSkippedOutcomes(t *testing.T) {
	clk := newFakeClock()
	b := newBreaker(t, clk, nil, 1, func(c *guard.BreakerConfig) {
		c.HalfOpen = guard.HalfOpenConfig{Probes: 1, Successes: 1}
	})
	early, _ := b.Acquire(t.Context(), nil)
	for range 5 {
		call(t, b, fail)
	}
	clk.Advance(time.Second)
	probe, err := b.Acquire(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// A call admitted while closed ends now: it says nothing of the
	// upstream since, and must not close (or reopen) the breaker.
	b.Release(early, fail)
	if b.State() != "half_open" {
		t.Fatalf("stale outcome moved the breaker to %s", b.State())
	}
	// A probe that never reached the upstream gives its place back.
	b.Release(probe, guard.Outcome{Skipped: true})
	probe, err = b.Acquire(t.Context(), nil)
	if err != nil {
		t.Fatalf("skipped probe kept its place: %v", err)
	}
	b.Release(probe, ok200)
	if b.State() != "closed" {
		t.Errorf("state %s after a successful probe, want closed", b.State())
	}
}

func TestBreaker_SlowProbeReopens(t *testing.T) {
	clk := newFakeClock()
	b := newBreaker(t, clk, nil, 1, func(c *guard.BreakerConfig) {
		c.SlowCall = guard.SlowCallConfig{Over: 100 * time.Millisecond, Rate: 50}
	})
	for range 5 {
		call(t, b, slowOK)
	}
	if b.State() != "open" {
		t.Fatalf("state %s after slow calls, want open", b.State())
	}
	clk.Advance(time.Second)
	call(t, b, slowOK)
	if b.State() != "open" {
		t.Errorf("slow probe: state %s, want open again", b.State())
	}
}

package guard_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/resctl/resctl/guard"
)

func newConcurrencyBreaker(t *testing.T, clk *fakeClock, ev *events) *guard.ConcurrencyBreaker {
	t.Helper()
	c := guard.DefaultConcurrencyBreakerConfig()
	c.MaxInFlight = 3
	c.P99 = guard.P99Trigger{Multiple: 2, Breaches: 2, Samples: 3, Interval: time.Second, MinCalls: 5, Warmup: 2, Learning: 10}
	c.OpenFor = 5 * time.Second
	c.Probes = 2
	o := guard.Options{Clock: clk}
	if ev != nil {
		o.Observer = ev
	}
	b, err := guard.NewConcurrencyBreaker("cb", c, o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// second sends n calls of latency d, then moves the clock one interval on
// and ends the sample with one more call.
func second(t *testing.T, clk *fakeClock, b guard.Policy, n int, d time.Duration) {
	t.Helper()
	for range n {
		if err := call(t, b, guard.Outcome{Duration: d, Status: 200}); err != nil {
			t.Fatalf("call rejected: %v", err)
		}
	}
	clk.Advance(time.Second)
}

func TestConcurrencyBreaker_InFlightCeiling(t *testing.T) {
	clk := newFakeClock()
	ev := newEvents(clk)
	b := newConcurrencyBreaker(t, clk, ev)
	var ps []guard.Permit
	for range 3 {
		p, err := b.Acquire(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	_, err := b.Acquire(t.Context(), nil)
	rej := rejected(t, err, guard.ErrOpen, "in_flight")
	if rej.RetryAfter != 5*time.Second {
		t.Errorf("RetryAfter %v, want open_for", rej.RetryAfter)
	}
	for _, p := range ps {
		b.Release(p, ok200)
	}
	clk.Advance(time.Second)
	_, err = b.Acquire(t.Context(), nil)
	rejected(t, err, guard.ErrOpen, "in_flight") // still open, though calls drained

	clk.Advance(4 * time.Second)
	p1, err := b.Acquire(t.Context(), nil)
	if err != nil {
		t.Fatalf("after open_for: %v", err)
	}
	p2, _ := b.Acquire(t.Context(), nil)
	_, err = b.Acquire(t.Context(), nil)
	rejected(t, err, guard.ErrOpen, "recovering")
	b.Release(p1, ok200)
	b.Release(p2, ok200)
	// A healthy sample closes it.
	second(t, clk, b, 5, time.Millisecond)
	call(t, b, ok200)
	ev.want(t, "closed→overloaded @0s", "overloaded→recovering @5s", "recovering→closed @6s")
}

func TestConcurrencyBreaker_P99AboveBaseline(t *testing.T) {
	clk := newFakeClock()
	ev := newEvents(clk)
	b := newConcurrencyBreaker(t, clk, ev)
	// Warm-up: two samples at 10ms learn the baseline.
	second(t, clk, b, 10, 10*time.Millisecond)
	second(t, clk, b, 10, 10*time.Millisecond)
	call(t, b, guard.Outcome{Duration: 10 * time.Millisecond}) // closes the second sample
	if base := b.Baseline(); base < 10*time.Millisecond || base > 12*time.Millisecond {
		t.Fatalf("baseline %v, want about 10ms", base)
	}
	// One breach, one healthy sample, one breach: 2 of the last 3 trip.
	second(t, clk, b, 10, 50*time.Millisecond)
	second(t, clk, b, 10, 10*time.Millisecond)
	if b.State() != "closed" {
		t.Fatalf("one breach tripped it: %s", b.State())
	}
	second(t, clk, b, 10, 50*time.Millisecond)
	call(t, b, guard.Outcome{Duration: 50 * time.Millisecond})
	if b.State() != "degraded" {
		t.Fatalf("two breaches of three: state %s, want degraded", b.State())
	}
	rejected(t, call(t, b, ok200), guard.ErrOpen, "p99")

	// Recovering with a slow sample goes back to degraded; a fast one closes.
	clk.Advance(5 * time.Second)
	second(t, clk, b, 2, 50*time.Millisecond)
	second(t, clk, b, 3, 50*time.Millisecond)
	call(t, b, guard.Outcome{Duration: 50 * time.Millisecond})
	if b.State() != "degraded" {
		t.Fatalf("slow probes: state %s, want degraded", b.State())
	}
	clk.Advance(5 * time.Second)
	second(t, clk, b, 6, 10*time.Millisecond)
	call(t, b, guard.Outcome{Duration: 10 * time.Millisecond})
	if b.State() != "closed" {
		t.Fatalf("fast probes: state %s, want closed", b.State())
	}
	got := ev.get()
	want := []string{"closed→degraded", "degraded→recovering", "recovering→degraded", "degraded→recovering", "recovering→closed"}
	if len(got) != len(want) {
		t.Fatalf("transitions %q, want %q", got, want)
	}
	for i := range want {
		if got[i][:len(want[i])] != want[i] {
			t.Errorf("transition %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func TestConcurrencyBreaker_FewCallsCarryOver(t *testing.T) {
	clk := newFakeClock()
	b := newConcurrencyBreaker(t, clk, nil)
	// Under min_calls per interval, intervals merge until there are enough.
	for range 4 {
		second(t, clk, b, 1, 10*time.Millisecond)
	}
	if b.Baseline() != 0 {
		t.Fatalf("baseline learned from 4 calls: %v", b.Baseline())
	}
	second(t, clk, b, 1, 10*time.Millisecond)
	second(t, clk, b, 6, 10*time.Millisecond)
	call(t, b, ok200)
	if b.Baseline() == 0 {
		t.Error("no baseline after two full samples")
	}
}

// TestConcurrencyBreaker_Goroutines drives the goroutine trigger with an
// injected count, one sample a second: alone against its ceiling or its
// baseline, and with the P99, where only the two together degrade.
func TestConcurrencyBreaker_Goroutines(t *testing.T) {
	type second struct {
		goroutines int
		latency    time.Duration
	}
	calm := func(n int) []second {
		s := make([]second, n)
		for i := range s {
			s[i] = second{100, 10 * time.Millisecond}
		}
		return s
	}
	tests := []struct {
		name    string
		trigger guard.GoroutineTrigger
		p99     float64 // the P99's multiple; 0 turns it off
		seconds []second
		want    string // the reason of the rejection after the last second, "" for none
	}{
		{"ceiling", guard.GoroutineTrigger{Max: 1000}, 0,
			append(calm(3), second{1500, 10 * time.Millisecond}), "goroutines"},
		{"under the ceiling", guard.GoroutineTrigger{Max: 1000}, 0,
			append(calm(3), second{900, 10 * time.Millisecond}), ""},
		{"a multiple of the baseline, M of N", guard.GoroutineTrigger{Multiple: 3}, 0,
			append(calm(3), second{400, 10 * time.Millisecond}, second{400, 10 * time.Millisecond}), "goroutines"},
		{"one breach is not enough", guard.GoroutineTrigger{Multiple: 3}, 0,
			append(calm(3), second{400, 10 * time.Millisecond}, second{100, 10 * time.Millisecond}), ""},
		{"with p99: goroutines alone do not degrade", guard.GoroutineTrigger{Multiple: 3, WithP99: true}, 2,
			append(calm(3), second{400, 10 * time.Millisecond}, second{400, 10 * time.Millisecond}, second{400, 10 * time.Millisecond}), ""},
		{"with p99: latency alone does not degrade", guard.GoroutineTrigger{Multiple: 3, WithP99: true}, 2,
			append(calm(3), second{100, 100 * time.Millisecond}, second{100, 100 * time.Millisecond}, second{100, 100 * time.Millisecond}), ""},
		{"with p99: both together degrade", guard.GoroutineTrigger{Multiple: 3, WithP99: true}, 2,
			append(calm(3), second{400, 100 * time.Millisecond}, second{400, 100 * time.Millisecond}, second{400, 100 * time.Millisecond}), "p99"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			sig := &fakeSignals{}
			c := guard.DefaultConcurrencyBreakerConfig()
			c.MaxInFlight = 0
			c.P99 = guard.P99Trigger{Multiple: tt.p99, Breaches: 2, Samples: 3, Interval: time.Second, MinCalls: 5, Warmup: 2, Learning: 10}
			c.Goroutines = tt.trigger
			mustCheck(t, &c)
			b, err := guard.NewConcurrencyBreaker("cb", c, guard.Options{Clock: clk, Signals: sig})
			if err != nil {
				t.Fatal(err)
			}
			// The calls of a second end the sample of the one before: a
			// trip shows in the last second's calls or in one more.
			err = nil
			for i, s := range tt.seconds {
				sig.setGoroutines(s.goroutines)
				for range 10 {
					if err = call(t, b, guard.Outcome{Duration: s.latency, Status: 200}); err != nil {
						break
					}
				}
				if err != nil && i < len(tt.seconds)-1 {
					t.Fatalf("second %d: rejected early: %v", i, err)
				}
				clk.Advance(time.Second)
			}
			if err == nil {
				err = call(t, b, ok200)
			}
			if tt.want == "" {
				if err != nil {
					t.Errorf("rejected: %v (state %s)", err, b.State())
				}
				return
			}
			rejected(t, err, guard.ErrOpen, tt.want)
		})
	}
}

// A dependency that refuses connections answers nothing: those calls'
// instant failures must not teach the breaker a baseline it will hold the
// dependency to once it is back — which left it degraded for good.
func TestConcurrencyBreaker_RefusedCallsAreNoLatency(t *testing.T) {
	clk := newFakeClock()
	b := newConcurrencyBreaker(t, clk, nil)
	second(t, clk, b, 10, 20*time.Millisecond)
	second(t, clk, b, 10, 20*time.Millisecond)
	call(t, b, guard.Outcome{Duration: 20 * time.Millisecond, Status: 200})
	learnt := b.Baseline()
	refused := errors.New("connection refused")
	for range 20 { // twenty seconds of refused connections
		for range 10 {
			if err := call(t, b, guard.Outcome{Duration: time.Millisecond, Err: refused}); err != nil {
				t.Fatalf("call rejected: %v", err)
			}
		}
		clk.Advance(time.Second)
	}
	if got := b.Baseline(); got != learnt {
		t.Errorf("baseline %v after refused connections, want the %v learnt from answers", got, learnt)
	}
	for range 5 { // the dependency is back, as fast as before
		second(t, clk, b, 10, 20*time.Millisecond)
	}
	if b.State() != "closed" {
		t.Errorf("state %s once the dependency answers as before, want closed", b.State())
	}
	// A timeout is a call that took long, not one that never reached:
	// the outcome's, or the network's ("timeout awaiting response
	// headers", an i/o deadline).
	// In each sample one call in ten times out and the rest answer as
	// before: the P99 is the timeout's, if it counts.
	for _, slow := range []guard.Outcome{
		{Duration: time.Second, Timeout: true, Err: context.DeadlineExceeded},
		{Duration: time.Second, Err: os.ErrDeadlineExceeded},
	} {
		b := newConcurrencyBreaker(t, clk, nil)
		second(t, clk, b, 10, 20*time.Millisecond)
		second(t, clk, b, 10, 20*time.Millisecond)
		for range 3 {
			for range 9 {
				_ = call(t, b, guard.Outcome{Duration: 20 * time.Millisecond, Status: 200})
			}
			_ = call(t, b, slow)
			clk.Advance(time.Second)
		}
		_ = call(t, b, guard.Outcome{Duration: 20 * time.Millisecond, Status: 200})
		if b.State() == "closed" {
			t.Errorf("calls ending in %v did not trip the latency trigger", slow.Err)
		}
	}
}

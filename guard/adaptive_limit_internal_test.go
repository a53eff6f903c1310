package guard

import (
	"context"
	"testing"
	"time"
)

// alWindow runs n sequential calls of latency d through a, counts those
// it asked to time, then moves the clock a window on and closes the
// window.
func alWindow(t *testing.T, clk *manualClock, a *AdaptiveLimit, n int, d time.Duration) (timed int) {
	t.Helper()
	for range n {
		p, err := a.Acquire(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if p.flag&timedFlag != 0 {
			timed++
		}
		a.Release(p, Outcome{Duration: d, Status: 200})
	}
	clk.t = clk.t.Add(a.cfg.Window)
	closeWindow(t, a, d)
	return timed
}

// closeWindow makes calls of latency d until one is timed, which closes
// a window whose time is over: at most weight calls.
func closeWindow(t *testing.T, a *AdaptiveLimit, d time.Duration) {
	t.Helper()
	for i := int64(0); ; i++ {
		if i > maxWeight {
			t.Fatalf("%d calls in a row not timed", i)
		}
		p, err := a.Acquire(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		a.Release(p, Outcome{Duration: d, Status: 200})
		if p.flag&timedFlag != 0 {
			return
		}
	}
}

func newTestLimit(t *testing.T, clk *manualClock) *AdaptiveLimit {
	c := DefaultAdaptiveLimitConfig()
	c.Smoothing = 100
	a, err := NewAdaptiveLimit("al", c, Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// A quiet limit times every call; a busy one times enough of them, at
// least 2 × minSampled a window, and no more than four times that once
// it knows the window's traffic.
func TestAdaptiveLimit_SamplesBusyWindows(t *testing.T) {
	clk := &manualClock{t: time.Unix(1000, 0)}
	a := newTestLimit(t, clk)
	// The detection table's 200 calls a second: every call timed.
	for range 3 {
		if timed := alWindow(t, clk, a, 200, 10*time.Millisecond); timed != 200 {
			t.Fatalf("%d of 200 calls timed in a quiet window, want all", timed)
		}
	}
	// A first busy window: every call timed until 2 × minSampled, then
	// the weight doubles each time as many more have been counted.
	const busy = 20000
	timed := alWindow(t, clk, a, busy, 10*time.Millisecond)
	if timed < 2*minSampled || timed >= busy/2 {
		t.Errorf("%d of %d calls timed in the first busy window, want between %d and %d", timed, busy, 2*minSampled, busy/2)
	}
	// The windows after it start at the weight the last one's calls
	// call for: 20,000 ÷ 512, rounded down to a power of two, is 32.
	if w := a.weight.Load(); w != 32 {
		t.Errorf("weight %d after a window of %d calls, want 32", w, busy)
	}
	for range 3 {
		timed := alWindow(t, clk, a, busy, 10*time.Millisecond)
		if timed < 2*minSampled || timed > 4*2*minSampled {
			t.Errorf("%d of %d calls timed in a busy window, want %d to %d", timed, busy, 2*minSampled, 8*minSampled)
		}
	}
	// Traffic falls: the next window times every call again.
	alWindow(t, clk, a, 300, 10*time.Millisecond)
	if timed := alWindow(t, clk, a, 300, 10*time.Millisecond); timed != 300 {
		t.Errorf("%d of 300 calls timed once traffic fell, want all", timed)
	}
}

// Sampling changes what a window costs, not what it learns: a limit
// sees the same latencies in windows of 20,000 calls, most untimed, as
// in windows of 20, and moves the same way. The untimed calls' Durations
// are ignored, so feeding them a wrong one changes nothing.
func TestAdaptiveLimit_SampledWindowsLearnAlike(t *testing.T) {
	run := func(calls int, untimed time.Duration) []float64 {
		clk := &manualClock{t: time.Unix(1000, 0)}
		a := newTestLimit(t, clk)
		var limits []float64
		for i := range 12 {
			d := 10 * time.Millisecond
			if i >= 6 {
				d = 50 * time.Millisecond // queueing: the limit falls
			}
			// Hold half the limit open so that it may grow.
			var held []Permit
			for range int(a.Limit()) - 1 {
				p, err := a.Acquire(t.Context(), nil)
				if err != nil {
					t.Fatal(err)
				}
				held = append(held, p)
			}
			for range calls {
				p, err := a.Acquire(t.Context(), nil)
				if err != nil {
					t.Fatal(err)
				}
				o := Outcome{Duration: d, Status: 200}
				if p.flag&timedFlag == 0 {
					o.Duration = untimed
				}
				a.Release(p, o)
			}
			for _, p := range held {
				a.Release(p, Outcome{Skipped: true})
			}
			clk.t = clk.t.Add(time.Second)
			closeWindow(t, a, d)
			limits = append(limits, a.Limit())
		}
		return limits
	}
	quiet := run(20, 0)
	busy := run(20000, time.Hour)
	for i := range quiet {
		if quiet[i] != busy[i] {
			t.Fatalf("limits by window, 20 calls each: %v; 20,000 calls each: %v", quiet, busy)
		}
	}
	if quiet[5] <= 20 || quiet[11] >= quiet[5] {
		t.Errorf("limits %v: want them to grow while fast, then fall", quiet)
	}
}

// On the system clock a chain times only the calls a sampling limit asks
// for: the others end without a clock read, and the limit learns nothing
// from them.
func TestChain_TimesSampledCallsOnly(t *testing.T) {
	a, err := NewAdaptiveLimit("al", DefaultAdaptiveLimitConfig(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := NewChain(a)
	a.weight.Store(4)
	call := func(context.Context) Outcome { return Outcome{Status: 200} }
	for i := 1; i <= 8; i++ {
		permits, start, err := c.acquire(t.Context(), &Request{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if sampled := i%4 == 0; (start >= 0) != sampled {
			t.Errorf("call %d: start %d, want a reading only for every fourth call", i, start)
		}
		c.release(permits, Outcome{Skipped: true})
	}
	for range 8 {
		if err := c.Do(t.Context(), &Request{}, call); err != nil {
			t.Fatal(err)
		}
	}
	if n := a.samples.Load(); n != 8 {
		t.Errorf("window counts %d calls after two timed calls of weight 4, want 8", n)
	}
	if a.sum.Load() <= 0 {
		t.Errorf("the timed calls added no duration")
	}
}

package guard_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/resctl/resctl/guard"
)

// window runs n sequential calls of latency d through an adaptive limit,
// then moves one window on and closes the window with one more call.
func adaptiveWindow(t *testing.T, clk *fakeClock, a *guard.AdaptiveLimit, inFlight, n int, d time.Duration) {
	t.Helper()
	// Hold inFlight-1 calls open so the limiter sees the load it would.
	var held []guard.Permit
	for range inFlight - 1 {
		p, err := a.Acquire(t.Context(), nil)
		if err != nil {
			break
		}
		held = append(held, p)
	}
	for range n {
		if p, err := a.Acquire(t.Context(), nil); err == nil {
			a.Release(p, guard.Outcome{Duration: d, Status: 200})
		}
	}
	for _, p := range held {
		a.Release(p, guard.Outcome{Skipped: true})
	}
	clk.Advance(time.Second)
}

func TestAdaptiveLimit_LearnsAndLowers(t *testing.T) {
	for _, alg := range []string{guard.AlgorithmGradient, guard.AlgorithmVegas} {
		t.Run(alg, func(t *testing.T) {
			clk := newFakeClock()
			c := guard.DefaultAdaptiveLimitConfig()
			c.Algorithm = alg
			c.Smoothing = 100
			a, err := guard.NewAdaptiveLimit("al", c, guard.Options{Clock: clk})
			if err != nil {
				t.Fatal(err)
			}
			// Busy and fast: the limit grows past its start of 20.
			for range 5 {
				adaptiveWindow(t, clk, a, int(a.Limit()), 20, 10*time.Millisecond)
			}
			grown := a.Limit()
			if grown <= 20 {
				t.Fatalf("limit %v after fast windows at the limit, want above 20", grown)
			}
			// Queueing: latency five times the no-load latency lowers it.
			for range 5 {
				adaptiveWindow(t, clk, a, int(a.Limit()), 20, 50*time.Millisecond)
			}
			if low := a.Limit(); low >= grown {
				t.Errorf("limit %v after slow windows, want below %v", low, grown)
			}
		})
	}
}

func TestAdaptiveLimit_AppLimitedDoesNotGrow(t *testing.T) {
	clk := newFakeClock()
	c := guard.DefaultAdaptiveLimitConfig()
	c.Smoothing = 100
	a, _ := guard.NewAdaptiveLimit("al", c, guard.Options{Clock: clk})
	for range 5 {
		adaptiveWindow(t, clk, a, 1, 20, 10*time.Millisecond)
	}
	if a.Limit() != 20 {
		t.Errorf("limit %v after windows with one call in flight, want it left at 20", a.Limit())
	}
}

func TestAdaptiveLimit_RejectsOverLimitAndBacksOffOnDrops(t *testing.T) {
	clk := newFakeClock()
	c := guard.DefaultAdaptiveLimitConfig()
	c.InitialLimit = 2
	a, _ := guard.NewAdaptiveLimit("al", c, guard.Options{Clock: clk})
	p1, _ := a.Acquire(t.Context(), nil)
	p2, _ := a.Acquire(t.Context(), nil)
	_, err := a.Acquire(t.Context(), nil)
	rej := rejected(t, err, guard.ErrLimited, "limit")
	if rej.Status != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", rej.Status)
	}
	a.Release(p1, ok200)
	clk.Advance(time.Second)
	a.Release(p2, guard.Outcome{Status: 503})
	if got := a.Limit(); got != 1.8 {
		t.Errorf("limit after a window with a refusal = %v, want 2 × 90%%", got)
	}
}

func TestShed_BBR(t *testing.T) {
	clk := newFakeClock()
	ev := newEvents(clk)
	sig := &fakeSignals{cpus: 2}
	c := guard.DefaultShedConfig()
	c.CPUSmoothing = 100
	s, err := guard.NewShed("shed", c, guard.Options{Clock: clk, Signals: sig, Observer: ev})
	if err != nil {
		t.Fatal(err)
	}
	// One second of traffic: 10 calls per 100ms bucket, 20ms each.
	for range 10 {
		for range 10 {
			call(t, s, guard.Outcome{Duration: 20 * time.Millisecond, Status: 200})
		}
		sig.burn(100*time.Millisecond, 0.5)
		clk.Advance(100 * time.Millisecond)
	}
	// Capacity: 10 per bucket × 10 buckets/s × 20ms = 2 calls in flight.
	if got := s.Limit(); got != 2 {
		t.Fatalf("capacity %v, want 2", got)
	}
	hold := func(n int) []guard.Permit {
		var ps []guard.Permit
		for range n {
			p, err := s.Acquire(t.Context(), nil)
			if err != nil {
				t.Fatalf("call %d rejected: %v", len(ps)+1, err)
			}
			ps = append(ps, p)
		}
		return ps
	}
	// CPU at 50%: nothing is shed, whatever is in flight.
	ps := hold(5)
	for _, p := range ps {
		s.Release(p, guard.Outcome{Skipped: true})
	}
	// CPU at 90%: calls beyond capacity are shed.
	sig.burn(250*time.Millisecond, 1)
	clk.Advance(250 * time.Millisecond)
	ps = hold(2)
	_, err = s.Acquire(t.Context(), nil)
	rejected(t, err, guard.ErrShed, "shed")
	if s.CPU() < 0.8 {
		t.Fatalf("cpu %v, want busy", s.CPU())
	}
	// CPU calms, but within the cool-off the capacity still holds.
	sig.burn(250*time.Millisecond, 0.1)
	clk.Advance(250 * time.Millisecond)
	_, err = s.Acquire(t.Context(), nil)
	rejected(t, err, guard.ErrShed, "shed")
	for _, p := range ps {
		s.Release(p, guard.Outcome{Skipped: true})
	}
	clk.Advance(1100 * time.Millisecond)
	for _, p := range hold(5) {
		s.Release(p, guard.Outcome{Skipped: true})
	}
	ev.want(t, "passing→shedding @1.25s", "shedding→passing @2.6s")
}

func TestRateLimit_TokenBucket(t *testing.T) {
	clk := newFakeClock()
	c := guard.DefaultRateLimitConfig()
	c.Rate, c.Burst = 10, 3
	l, err := guard.NewRateLimit("rl", c, guard.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := call(t, l, ok200); err != nil {
			t.Fatalf("burst call %d: %v", i+1, err)
		}
	}
	rej := rejected(t, call(t, l, ok200), guard.ErrLimited, "rate")
	if rej.Status != 429 || rej.RetryAfter != 100*time.Millisecond {
		t.Errorf("rejection %+v, want 429 with RetryAfter 100ms", rej)
	}
	clk.Advance(100 * time.Millisecond)
	if err := call(t, l, ok200); err != nil {
		t.Errorf("one token later: %v", err)
	}
	rejected(t, call(t, l, ok200), guard.ErrLimited, "rate")
	// Over 10 seconds at a steady 20 calls/s, half go through.
	admitted := 0
	for range 200 {
		clk.Advance(50 * time.Millisecond)
		if call(t, l, ok200) == nil {
			admitted++
		}
	}
	if admitted != 100 {
		t.Errorf("%d of 200 admitted at twice the rate, want 100", admitted)
	}
}

func TestRateLimit_SlidingWindow(t *testing.T) {
	clk := newFakeClock()
	c := guard.DefaultRateLimitConfig()
	c.Algorithm, c.Rate, c.Window = guard.AlgorithmSlidingWindow, 10, time.Second
	l, err := guard.NewRateLimit("rl", c, guard.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := call(t, l, ok200); err != nil {
			t.Fatalf("call %d of 10: %v", i+1, err)
		}
	}
	// The next call fits once this window's 10 calls, weighing as the
	// next window's previous, leave room for it: 10 × (1s − t)/1s + 1 ≤ 10
	// at t = 100ms into the next window — not at its very start.
	rej := rejected(t, call(t, l, ok200), guard.ErrLimited, "rate")
	if rej.RetryAfter != 1100*time.Millisecond {
		t.Errorf("RetryAfter %v, want the rest of the window and a tenth of the next", rej.RetryAfter)
	}
	// Half-way into the next window, half of the previous still counts:
	// 5 more fit.
	clk.Advance(1500 * time.Millisecond)
	n := 0
	for call(t, l, ok200) == nil {
		n++
	}
	if n != 5 {
		t.Errorf("%d admitted half-way into the next window, want 5", n)
	}
}

func TestRateLimit_PerKey(t *testing.T) {
	clk := newFakeClock()
	tests := []struct {
		name   string
		per    string
		header string
		reqs   []guard.Request
		want   []bool
	}{
		{"per header value", guard.PerHeader, "X-Tenant", []guard.Request{
			{Header: http.Header{"X-Tenant": {"a"}}}, {Header: http.Header{"X-Tenant": {"b"}}},
			{Header: http.Header{"X-Tenant": {"a"}}}, {},
			{}}, []bool{true, true, false, true, false}},
		{"per route", guard.PerRoute, "", []guard.Request{
			{Route: "/a"}, {Route: "/b"}, {Route: "/a"}}, []bool{true, true, false}},
		{"global", guard.PerGlobal, "", []guard.Request{
			{Route: "/a"}, {Route: "/b"}}, []bool{true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := guard.DefaultRateLimitConfig()
			c.Rate, c.Burst, c.Per, c.Header = 1, 1, tt.per, tt.header
			l, err := guard.NewRateLimit("rl", c, guard.Options{Clock: clk})
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range tt.reqs {
				_, err := l.Acquire(t.Context(), &r)
				if (err == nil) != tt.want[i] {
					t.Errorf("request %d (%+v): admitted %v, want %v", i+1, r, err == nil, tt.want[i])
				}
			}
		})
	}
}

func TestRateLimit_MaxKeysForgetsIdleKeys(t *testing.T) {
	clk := newFakeClock()
	c := guard.DefaultRateLimitConfig()
	c.Rate, c.Burst, c.Per, c.Header, c.MaxKeys = 1, 1, guard.PerHeader, "X-User", 32
	l, _ := guard.NewRateLimit("rl", c, guard.Options{Clock: clk})
	for i := range 10000 {
		r := &guard.Request{Header: http.Header{"X-User": {fmt.Sprint(i)}}}
		if _, err := l.Acquire(t.Context(), r); err != nil && !errors.Is(err, guard.ErrLimited) {
			t.Fatal(err)
		}
		if i%100 == 0 {
			clk.Advance(time.Second)
		}
	}
	if n := l.Keys(); n > 64 {
		t.Errorf("%d keys tracked with max_keys 32", n)
	}
}

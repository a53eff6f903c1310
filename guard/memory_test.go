package guard_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/resctl/resctl/guard"
	"github.com/resctl/resctl/quantity"
)

func newMemory(t *testing.T, clk *fakeClock, ev *events, sig *fakeSignals, edit func(*guard.MemoryConfig)) *guard.Memory {
	t.Helper()
	c := guard.DefaultMemoryConfig()
	c.Smoothing = 100 // tests set the signal they mean
	c.Yellow = guard.MemoryLevel{Bytes: 800, Action: guard.MemoryAction{Shed: 50}}
	c.Red = guard.MemoryLevel{Bytes: 950, Action: guard.MemoryAction{RejectNonCritical: true}}
	c.Critical = []string{"/healthz"}
	if edit != nil {
		edit(&c)
	}
	o := guard.Options{Clock: clk, Signals: sig, Seed: 3}
	if ev != nil {
		o.Observer = ev
	}
	m, err := guard.NewMemory("mem", c, o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// tick moves one interval on and lets a call read the signal.
func tick(t *testing.T, clk *fakeClock, m guard.Policy, mem uint64, sig *fakeSignals) {
	t.Helper()
	sig.set(mem)
	clk.Advance(time.Second)
	pm, err := m.Acquire(t.Context(), &guard.Request{Route: "/healthz"})
	if err == nil {
		m.Release(pm, ok200)
	}
}

func TestMemory_Levels(t *testing.T) {
	clk := newFakeClock()
	ev := newEvents(clk)
	sig := &fakeSignals{mem: 100, limit: 1000}
	m := newMemory(t, clk, ev, sig, nil)

	tick(t, clk, m, 810, sig)
	if m.State() != "yellow" {
		t.Fatalf("at 810 of yellow 800: %s", m.State())
	}
	// Yellow sheds about half of the non-critical calls, never critical ones.
	shed := 0
	for range 400 {
		if err := call(t, m, ok200); err != nil {
			rejected(t, err, guard.ErrShed, "shed")
			shed++
		}
		pm, err := m.Acquire(t.Context(), &guard.Request{Route: "/healthz/ready"})
		if err != nil {
			t.Fatalf("critical route rejected at yellow: %v", err)
		}
		m.Release(pm, ok200)
	}
	if shed < 150 || shed > 250 {
		t.Errorf("shed %d of 400 at 50%%", shed)
	}

	tick(t, clk, m, 960, sig)
	if m.State() != "red" {
		t.Fatalf("at 960 of red 950: %s", m.State())
	}
	rejected(t, call(t, m, ok200), guard.ErrShed, "noncritical")
	pm, err := m.Acquire(t.Context(), &guard.Request{Route: "/api/pay", Critical: true})
	if err != nil {
		t.Errorf("a request marked critical was rejected: %v", err)
	} else {
		m.Release(pm, ok200)
	}

	// Hysteresis (5%): 920 is below red but not 5% below it.
	tick(t, clk, m, 920, sig)
	if m.State() != "red" {
		t.Errorf("at 920, within hysteresis of red: %s", m.State())
	}
	tick(t, clk, m, 880, sig)
	if m.State() != "yellow" {
		t.Errorf("at 880: %s, want yellow", m.State())
	}
	tick(t, clk, m, 500, sig)
	if m.State() != "green" {
		t.Errorf("at 500: %s, want green", m.State())
	}
	for range 50 {
		if err := call(t, m, ok200); err != nil {
			t.Fatalf("green rejected a call: %v", err)
		}
	}
	ev.want(t, "green→yellow @1s", "yellow→red @2s", "red→yellow @4s", "yellow→green @5s")
}

func TestMemory_SharesOfTheLimitAndEWMA(t *testing.T) {
	clk := newFakeClock()
	sig := &fakeSignals{mem: 0, limit: 1000}
	m := newMemory(t, clk, nil, sig, func(c *guard.MemoryConfig) {
		c.Smoothing = 50
		c.Yellow = guard.MemoryLevel{Limit: 80, Action: guard.MemoryAction{MaxInFlight: 1}}
		c.Red = guard.MemoryLevel{Limit: 95}
	})
	// The EWMA halves the distance each reading: 0 → 500 → 750 → 875.
	for i, want := range []uint64{500, 750, 875} {
		tick(t, clk, m, 1000, sig)
		if got := m.Bytes(); got != want {
			t.Fatalf("reading %d: smoothed %d, want %d", i+1, got, want)
		}
	}
	if m.State() != "yellow" {
		t.Fatalf("smoothed 875 of 80%% of 1000: %s", m.State())
	}
	// Yellow's action lowers the concurrency limit to one call.
	pm, err := m.Acquire(t.Context(), &guard.Request{Route: "/a"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Acquire(t.Context(), &guard.Request{Route: "/b"})
	rejected(t, err, guard.ErrShed, "in_flight")
	m.Release(pm, ok200)
	if m.Limit() != 1 {
		t.Errorf("Limit() = %v, want 1", m.Limit())
	}
}

// A green policy has no action and so no limit; its metrics must still be
// collected (a nil action once panicked in Limit, failing all of /metrics).
func TestMemory_GreenHasNoLimit(t *testing.T) {
	m := newMemory(t, newFakeClock(), nil, &fakeSignals{mem: 100, limit: 1000}, nil)
	if m.State() != "green" || m.Limit() != 0 {
		t.Fatalf("state %s, Limit() = %v; want green and 0", m.State(), m.Limit())
	}
	if n := testutil.CollectAndCount(guard.NewChain(m).Collector(), "resctl_guard_limit"); n != 1 {
		t.Errorf("collected %d resctl_guard_limit series, want 1", n)
	}
}

func TestMemory_GrowthRate(t *testing.T) {
	clk := newFakeClock()
	sig := &fakeSignals{mem: 1 << 30, limit: 1 << 62}
	m := newMemory(t, clk, nil, sig, func(c *guard.MemoryConfig) {
		c.Yellow = guard.MemoryLevel{Growth: guard.GrowthLevel{Times: 3, Percentile: 90, Baseline: 10, Floor: 1 << 10}}
		c.Red = guard.MemoryLevel{Bytes: quantity.Bytes(8 << 30)}
	})
	mem := uint64(1 << 30)
	// Ten calm readings growing 1MiB/s make the baseline.
	for range 10 {
		mem += 1 << 20
		tick(t, clk, m, mem, sig)
	}
	if m.State() != "green" {
		t.Fatalf("steady growth: %s", m.State())
	}
	mem += 2 << 20 // twice the baseline: still green
	tick(t, clk, m, mem, sig)
	if m.State() != "green" {
		t.Fatalf("growth 2× baseline: %s", m.State())
	}
	mem += 4 << 20 // four times: yellow
	tick(t, clk, m, mem, sig)
	if m.State() != "yellow" {
		t.Fatalf("growth 4× baseline: %s, want yellow", m.State())
	}
}

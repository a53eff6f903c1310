package inject_test

import (
	"math"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/resctl/resctl/inject"
)

// scheduled activates an abort with the given parameters on a board whose
// clock the test moves, and returns a function that sends one request at an
// offset from the activation and reports whether it was aborted.
func scheduled(t *testing.T, seed uint64, params string) (*inject.Activation, func(at time.Duration) bool) {
	t.Helper()
	clk := &clock{t: time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC)}
	start := clk.t
	b := inject.NewBoard(seed, clk.now)
	s, err := inject.ParseSpec("abort", []byte(params))
	if err != nil {
		t.Fatal(err)
	}
	a := activate(t, b, "f", s)
	h := b.Middleware(&upstream{})
	return a, func(at time.Duration) bool {
		clk.t = start.Add(at)
		return hit(h, http.MethodGet, "/")
	}
}

func TestSchedule(t *testing.T) {
	tests := []struct {
		name   string
		params string
		// at gives the time of the ith request (0-based).
		at   func(i int) time.Duration
		n    int
		want func(i int, at time.Duration) bool
	}{
		{"first N", "schedule: {first: 3}", func(int) time.Duration { return 0 }, 10,
			func(i int, _ time.Duration) bool { return i < 3 }},
		{"every Nth", "schedule: {every: 4}", func(int) time.Duration { return 0 }, 20,
			func(i int, _ time.Duration) bool { return (i+1)%4 == 0 }},
		{"first and every", "schedule: {first: 10, every: 5}", func(int) time.Duration { return 0 }, 30,
			func(i int, _ time.Duration) bool { return i < 10 && (i+1)%5 == 0 }},
		{"on/off windows", "schedule: {on: 2s, off: 3s}", func(i int) time.Duration { return time.Duration(i) * 500 * time.Millisecond }, 40,
			func(_ int, at time.Duration) bool { return at%(5*time.Second) < 2*time.Second }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, send := scheduled(t, 1, tt.params)
			for i := range tt.n {
				at := tt.at(i)
				got := send(at)
				want := tt.want(i, at)
				if got != want {
					t.Errorf("request %d at %v: aborted = %v, want %v", i, at, got, want)
				}
			}
			if st := a.Stats(); st.Matched != uint64(tt.n) {
				t.Errorf("matched = %d, want every request", st.Matched)
			}
		})
	}
}

func TestSchedule_Ramp(t *testing.T) {
	// From 0% to 80% over 100s: in the second half the rate is about 60%,
	// in the first about 20%.
	_, send := scheduled(t, 42, "schedule: {ramp: {from: 0%, to: 80%, over: 100s}}")
	var first, second int
	const per = 1000
	for i := range 2 * per {
		at := time.Duration(i) * 50 * time.Millisecond // 0..100s
		if send(at) {
			if i < per {
				first++
			} else {
				second++
			}
		}
	}
	for _, c := range []struct {
		name string
		got  int
		p    float64
	}{{"first half", first, 0.2}, {"second half", second, 0.6}} {
		mean, sd := per*c.p, math.Sqrt(per*c.p*(1-c.p))
		if math.Abs(float64(c.got)-mean) > 5*sd+per*0.02 {
			t.Errorf("%s: %d of %d aborted, want about %.0f", c.name, c.got, per, mean)
		}
	}
}

func TestSchedule_Deterministic(t *testing.T) {
	run := func(seed uint64) []bool {
		_, send := scheduled(t, seed, "{percent: 50, schedule: {every: 2, on: 1s, off: 1s}}")
		out := make([]bool, 200)
		for i := range out {
			out[i] = send(time.Duration(i) * 100 * time.Millisecond)
		}
		return out
	}
	if a, b := run(9), run(9); !slices.Equal(a, b) {
		t.Error("the same seed gave different decisions")
	}
	if a, b := run(9), run(10); slices.Equal(a, b) {
		t.Error("another seed gave the same decisions")
	}
}

func TestStats_ConfiguredRate(t *testing.T) {
	tests := []struct {
		params  string
		elapsed time.Duration
		want    float64
	}{
		{"percent: 30", time.Minute, 0.3},
		{"{percent: 50, schedule: {every: 5}}", time.Minute, 0.1},
		{"schedule: {on: 1s, off: 3s}", time.Minute, 0.25},
		{"schedule: {ramp: {from: 0%, to: 100%, over: 10s}}", 10 * time.Second, 0.5},
		{"schedule: {ramp: {from: 0%, to: 100%, over: 10s}}", 20 * time.Second, 0.75},
	}
	for _, tt := range tests {
		t.Run(tt.params, func(t *testing.T) {
			a, send := scheduled(t, 1, tt.params)
			send(tt.elapsed) // moves the clock
			if got := a.Stats().ConfiguredRate; math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("ConfiguredRate = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBoard_TTL(t *testing.T) {
	clk := &clock{t: time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC)}
	start := clk.t
	b := inject.NewBoard(1, clk.now)
	h := b.Middleware(&upstream{})
	s := abortSpec(100, inject.Match{})
	a, err := b.ActivateWith("ttl", s, inject.ActivateOptions{TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if !a.Expires().Equal(start.Add(time.Minute)) {
		t.Errorf("Expires = %v", a.Expires())
	}
	changes := 0
	defer b.OnChange(func() { changes++ })()

	clk.t = start.Add(59 * time.Second)
	if !hit(h, http.MethodGet, "/") {
		t.Error("the fault stopped before its TTL")
	}
	clk.t = start.Add(time.Minute)
	if hit(h, http.MethodGet, "/") {
		t.Error("the fault acted at the end of its TTL")
	}
	if changes != 0 {
		t.Error("the active set changed before anyone swept")
	}
	if got := b.Sweep(); len(got) != 1 || got[0] != a {
		t.Errorf("Sweep() = %v, want the expired fault", got)
	}
	if changes != 1 {
		t.Errorf("sweeping an expired fault signalled %d changes, want 1", changes)
	}
	if len(b.Active()) != 0 {
		t.Error("an expired fault is still listed as active")
	}
	if st := a.Stats(); !st.Until.Equal(start.Add(time.Minute)) || st.Matched != 1 {
		t.Errorf("stats = %+v, want Until at the expiry and one match", st)
	}
	// The id is free again once the fault expired.
	if _, err := b.ActivateWith("ttl", s, inject.ActivateOptions{TTL: time.Minute}); err != nil {
		t.Errorf("reactivating an expired id: %v", err)
	}
}

// TestBoard_OnExpire: a fault whose TTL ended is reported once, by
// whichever call of the board first sweeps it, and not after it is
// unregistered; a fault switched off before its TTL is not reported.
func TestBoard_OnExpire(t *testing.T) {
	clk := &clock{t: time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC)}
	b := inject.NewBoard(1, clk.now)
	var expired []string
	remove := b.OnExpire(func(a *inject.Activation) { expired = append(expired, a.ID) })
	for _, id := range []string{"short", "off", "long"} {
		ttl := time.Minute
		if id == "long" {
			ttl = time.Hour
		}
		if _, err := b.ActivateWith(id, abortSpec(100, inject.Match{}), inject.ActivateOptions{TTL: ttl}); err != nil {
			t.Fatal(err)
		}
	}
	b.Deactivate("off")
	clk.t = clk.t.Add(time.Minute)
	if len(expired) != 0 {
		t.Errorf("reported %v before any call of the board", expired)
	}
	b.Active()
	b.Sweep()
	if !slices.Equal(expired, []string{"short"}) {
		t.Errorf("expired = %v, want [short] once", expired)
	}
	remove()
	clk.t = clk.t.Add(time.Hour)
	b.Sweep()
	if !slices.Equal(expired, []string{"short"}) {
		t.Errorf("expired = %v after unregistering, want [short]", expired)
	}
}

func TestBoard_Replace(t *testing.T) {
	b := inject.NewBoard(1, nil)
	activate(t, b, "a", abortSpec(100, inject.Match{}))
	activate(t, b, "b", latencySpec(100, time.Nanosecond))
	if _, err := b.Replace("a", abortSpec(100, inject.Match{Path: "/x"}), inject.ActivateOptions{}); err != nil {
		t.Fatal(err)
	}
	if ids := activeIDs(b); !slices.Equal(ids, []string{"a", "b"}) {
		t.Errorf("active = %v, want the replaced fault in its place", ids)
	}
	if hit(b.Middleware(&upstream{}), http.MethodGet, "/api") {
		t.Error("the old spec still acts after Replace")
	}
	if _, err := b.Replace("nope", abortSpec(100, inject.Match{}), inject.ActivateOptions{}); err == nil {
		t.Error("Replace of an unknown id succeeded")
	}
	if n := len(b.History()); n != 3 {
		t.Errorf("history = %d activations, want 3", n)
	}
}

package main

import (
	"strings"
	"testing"
	"time"
)

// short is the model over a shorter run, for tests: still virtual time.
func short() Model {
	m := DefaultModel()
	m.Baseline, m.Fault, m.Recovery = 40*time.Second, 20*time.Second, 30*time.Second
	return m
}

// none is a fault that changes nothing: the fault phase is more baseline.
var none = Fault{Name: "none", At: func(time.Duration) (float64, float64, bool) { return 1, 0, false }}

func TestSimulate(t *testing.T) {
	flapping := Faults[3]
	tests := []struct {
		name   string
		fault  Fault
		policy string
		check  func(Result) bool
		want   string
	}{
		{"no fault, nothing detected", none, "- breaker: {}",
			func(r Result) bool {
				return r.Detect < 0 && r.FalseTrips == 0 && r.Refused == 0 && r.Recover == NotTripped
			},
			"never detects, never trips, refuses nothing"},
		{"a run of refused connections trips a consecutive-failures breaker at once", flapping, "- breaker: {consecutive_failures: 5, failure_rate: 0}",
			func(r Result) bool { return r.Detect >= 0 && r.Detect < 100*time.Millisecond && r.HurtBefore <= 5+2 },
			"detects within 100ms, at most 5 calls (and the baseline's noise) hurt"},
		{"a breaker without slow_call does not see latency", Faults[0], "- breaker: {}",
			func(r Result) bool { return r.Detect < 0 && r.HurtBefore > 1000 },
			"never detects; the slow calls all hurt"},
		{"a slow-call breaker sees latency and closes after", Faults[0], "- breaker: {window: 5s, min_calls: 20, failure_rate: 20%, slow_call: {over: 100ms, rate: 50%}, open_for: 5s}",
			func(r Result) bool {
				return r.Detect >= 0 && r.Detect < 5*time.Second && r.Recover >= 0 && r.Recover != NotTripped
			},
			"detects within its 5 s window, recovers before the run ends"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Simulate(short(), tt.fault, tt.policy, 1)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(r) {
				t.Errorf("%+v; want: %s", r, tt.want)
			}
			again, _ := Simulate(short(), tt.fault, tt.policy, 1)
			if again != r {
				t.Errorf("the same seed gave %+v, then %+v", r, again)
			}
		})
	}
}

func TestSimulate_BadPolicy(t *testing.T) {
	if _, err := Simulate(short(), none, "- breaker: {failure_rate: 300%}", 1); err == nil {
		t.Error("an impossible policy simulated")
	}
	if _, err := Simulate(short(), none, "- breaker: {}\n- timeout: 1s", 1); err == nil || !strings.Contains(err.Error(), "one policy") {
		t.Errorf("two policies: %v, want a cell to be one policy", err)
	}
}

// The clock runs events in time order, ties in the order scheduled, and a
// stopped timer never.
func TestSimClock(t *testing.T) {
	c := &simClock{now: time.Unix(0, 0)}
	var got []string
	c.AfterFunc(2*time.Second, func() { got = append(got, "b") })
	c.AfterFunc(time.Second, func() { got = append(got, "a") })
	c.AfterFunc(2*time.Second, func() { got = append(got, "c") })
	stop := c.AfterFunc(time.Second, func() { got = append(got, "stopped") })
	if !stop() || stop() {
		t.Error("stop: want true once, then false")
	}
	c.runUntil(time.Unix(1, 500))
	if strings.Join(got, "") != "a" || !c.Now().Equal(time.Unix(1, 500)) {
		t.Fatalf("at 1s: ran %q, clock %v", got, c.Now())
	}
	c.runUntil(time.Unix(5, 0))
	if strings.Join(got, "") != "abc" {
		t.Errorf("ran %q, want abc", got)
	}
}

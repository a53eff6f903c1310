package guard_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/resctl/resctl/guard"
)

func TestThrottle_Probability(t *testing.T) {
	tests := []struct {
		name        string
		k           float64
		ok, refused int
		want        float64 // after the calls, for the next request
	}{
		{"all accepted: never throttles", 2, 100, 0, 0},
		{"half refused with K=2: requests = K·accepts", 2, 50, 50, 0},
		{"all refused", 2, 0, 100, 100.0 / 101},
		{"three quarters refused", 2, 25, 75, (100 - 50.0) / 101},
		{"K=1.1 is more aggressive", 1.1, 50, 50, (100 - 55.0) / 101},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			c := guard.DefaultThrottleConfig()
			c.K = tt.k
			th, err := guard.NewThrottle("th", c, guard.Options{Clock: clk})
			if err != nil {
				t.Fatal(err)
			}
			// Outcomes are released directly: the dice must not decide
			// how many requests are counted.
			for range tt.ok {
				th.Release(guard.Permit{}, ok200)
			}
			for range tt.refused {
				th.Release(guard.Permit{}, guard.Outcome{Status: 503})
			}
			if got := th.Probability(); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("probability = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestThrottle_RejectsAndRecovers(t *testing.T) {
	clk := newFakeClock()
	ev := newEvents(clk)
	c := guard.DefaultThrottleConfig()
	c.Window = 10 * time.Second
	th, err := guard.NewThrottle("th", c, guard.Options{Clock: clk, Seed: 7, Observer: ev})
	if err != nil {
		t.Fatal(err)
	}
	// The upstream refuses everything: the throttle rejects most calls
	// locally, in proportion.
	const n = 2000
	rejections := 0
	for range n {
		err := call(t, th, guard.Outcome{Status: 503})
		if err != nil {
			rejected(t, err, guard.ErrLimited, "throttled")
			rejections++
		}
	}
	if rejections < n*9/10 {
		t.Errorf("%d of %d rejected against an upstream refusing all, want nearly all", rejections, n)
	}
	var rej *guard.Rejection
	errors.As(call(t, th, ok200), &rej)
	if rej == nil || rej.Status != 429 {
		t.Errorf("rejection = %+v, want 429", rej)
	}
	// The window slides past the refusals; the throttle passes again.
	clk.Advance(11 * time.Second)
	for range 10 {
		if err := call(t, th, ok200); err != nil {
			t.Fatalf("after the window passed: %v", err)
		}
	}
	if th.State() != "passing" {
		t.Errorf("state %s, want passing", th.State())
	}
	ev.want(t, "passing→limiting @0s", "limiting→passing @11s")
}

func TestThrottle_SkippedCallsAreNotRequests(t *testing.T) {
	clk := newFakeClock()
	th, _ := guard.NewThrottle("th", guard.DefaultThrottleConfig(), guard.Options{Clock: clk})
	for range 100 {
		th.Release(guard.Permit{}, guard.Outcome{Skipped: true})
	}
	if p := th.Probability(); p != 0 {
		t.Errorf("probability = %v after skipped calls only, want 0", p)
	}
}

package guard

import (
	"context"
	"fmt"
	"math"
	"time"
)

// ThrottleConfig configures client-side adaptive throttling as described in
// Google's SRE book ("Handling Overload"): the proxy counts the requests it
// was asked to send and the ones the upstream accepted over a window, and
// rejects locally with probability max(0, (requests − K·accepts) /
// (requests + 1)). An upstream that refuses most calls is spared the ones
// it would refuse anyway.
type ThrottleConfig struct {
	// K is how many requests per accepted one the upstream may be asked
	// for before throttling starts; lower is more aggressive. 2 is the
	// book's choice.
	K float64 `yaml:"k"`
	// Window is how far back requests and accepts are counted, in whole
	// seconds.
	Window time.Duration `yaml:"window"`
	// Failure says which outcomes are the upstream refusing a call; any
	// other outcome is an accept.
	Failure FailureConfig `yaml:"failure"`
}

// DefaultThrottleConfig is the book's: K = 2 over two minutes.
func DefaultThrottleConfig() ThrottleConfig {
	return ThrottleConfig{K: 2, Window: 2 * time.Minute, Failure: overloadFailure()}
}

var _ Config = (*ThrottleConfig)(nil)

// Kind implements Config.
func (*ThrottleConfig) Kind() string { return "throttle" }

// Check implements Config.
func (c *ThrottleConfig) Check(problem func(field, msg string)) {
	switch {
	case math.IsNaN(c.K) || math.IsInf(c.K, 0):
		problem("k", "must be a number")
	case c.K < 0:
		problem("k", fmt.Sprintf("%v is negative: K is requests allowed per accepted request", c.K))
	case c.K < 1:
		problem("k", fmt.Sprintf("%v is below 1: the throttle would reject even when the upstream accepts everything", c.K))
	}
	checkSeconds("window", c.Window, problem)
	c.Failure.Check(prefixed("failure", problem))
}

func checkSeconds(field string, d time.Duration, problem func(field, msg string)) {
	switch {
	case d <= 0:
		problem(field, "must be above zero, e.g. 10s")
	case d%time.Second != 0:
		problem(field, fmt.Sprintf("%v is not a whole number of seconds (one-second buckets)", d))
	}
}

// Build implements Config.
func (c *ThrottleConfig) Build(name string, o Options) (Policy, error) {
	return build(NewThrottle(name, *c, o))
}

// Throttle is SRE client-side adaptive throttling. Its states are
// "passing" and "limiting" (it rejected a call within the last second).
type Throttle struct {
	core
	pressure
	cfg      ThrottleConfig
	failures classifier
	rand     *rng
	win      *timeWindow // calls: requests; bad: accepts
}

var _ Policy = (*Throttle)(nil)

// NewThrottle returns a throttle that has seen nothing, and so passes.
func NewThrottle(name string, c ThrottleConfig, o Options) (*Throttle, error) {
	if err := validate(&c, name); err != nil {
		return nil, err
	}
	t := &Throttle{cfg: c, failures: newClassifier(c.Failure), rand: newRNG(o.Seed, name)}
	t.init("throttle", name, o, []string{"passing", "limiting"}, []string{"throttled"}, exhausted())
	t.win = newTimeWindow(time.Second, int(c.Window/time.Second), t.clk.nanos())
	return t, nil
}

// Probability is the share of calls the throttle rejects now.
func (t *Throttle) Probability() float64 {
	req, acc := t.win.totals(t.clk.nanos())
	return t.probability(req, acc)
}

func (t *Throttle) probability(req, acc uint64) float64 {
	return max(0, (float64(req)-t.cfg.K*float64(acc))/(float64(req)+1))
}

// Acquire implements Policy. A call the throttle rejects counts as a
// request at once; an admitted one counts when it ends (see Release), so
// that a call a later policy skips is not counted at all.
func (t *Throttle) Acquire(_ context.Context, _ *Request) (Permit, error) {
	now := t.clk.nanos()
	req, acc := t.win.totals(now)
	if p := t.probability(req, acc); p > 0 && t.rand.float64() < p {
		t.win.add(now, 1, 0)
		t.onReject(&t.core, now)
		return Permit{}, t.reject(0, 0)
	}
	t.admitted.Add(1)
	t.onAdmit(&t.core, -1)
	return Permit{}, nil
}

func (*Throttle) instant() {}

// Release implements Policy: every call that reached the upstream is a
// request, and one the upstream did not refuse is also an accept.
func (t *Throttle) Release(_ Permit, o Outcome) {
	switch t.failures.classify(&o) {
	case success:
		t.win.add(t.clk.nanos(), 1, 1)
	case failure:
		t.win.add(t.clk.nanos(), 1, 0)
	}
}

package guard

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/resctl/resctl/quantity"
)

// BreakerConfig configures a circuit breaker. It trips on the failure rate,
// the slow-call rate or a run of consecutive failures; stays open for
// OpenFor (backing off when it fails again); then lets a few probes through
// and closes once enough of them succeed.
type BreakerConfig struct {
	// Window is what the rates are computed over: the last N calls
	// ("100") or the last N seconds ("10s").
	Window Window `yaml:"window"`
	// MinCalls is how many calls the window must hold before a rate can
	// trip the breaker, so that one failure among two calls does not.
	MinCalls int `yaml:"min_calls"`
	// FailureRate trips the breaker when this share of the window's calls
	// failed; 0 turns the check off.
	FailureRate quantity.Percent `yaml:"failure_rate"`
	SlowCall    SlowCallConfig   `yaml:"slow_call"`
	// ConsecutiveFailures trips the breaker after this many failures in a
	// row, whatever the window holds; 0 turns the check off.
	ConsecutiveFailures int `yaml:"consecutive_failures"`
	// OpenFor is how long the breaker stays open the first time.
	OpenFor  time.Duration  `yaml:"open_for"`
	Backoff  BackoffConfig  `yaml:"backoff"`
	HalfOpen HalfOpenConfig `yaml:"half_open"`
	Failure  FailureConfig  `yaml:"failure"`
}

// SlowCallConfig makes slowness a reason to trip: calls that take longer
// than Over are slow, and Rate of them in the window trips the breaker.
type SlowCallConfig struct {
	// Over is the slow-call threshold; 0 turns the check off.
	Over time.Duration `yaml:"over"`
	// Rate is the share of slow calls in the window that trips the breaker.
	Rate quantity.Percent `yaml:"rate"`
}

// BackoffConfig lengthens the open wait each time a probe fails: the wait
// is OpenFor × Multiplier^n (n failed probes in a row), at most Max, with
// ±Jitter drawn from the seeded generator so breakers of a fleet do not
// probe in step.
type BackoffConfig struct {
	// Multiplier lengthens the open wait after each failed probe: OpenFor ×
	// Multiplier^n.
	Multiplier float64 `yaml:"multiplier"`
	// Max is the longest open wait.
	Max time.Duration `yaml:"max"`
	// Jitter varies each wait by up to ± this share, so breakers of a fleet
	// do not probe in step.
	Jitter quantity.Percent `yaml:"jitter"`
}

// HalfOpenConfig says how the breaker tests the upstream after waiting.
type HalfOpenConfig struct {
	// Probes is how many calls the half-open breaker lets through.
	Probes int `yaml:"probes"`
	// Successes is how many of them must succeed to close it; any probe
	// that fails opens it again.
	Successes int `yaml:"successes"`
}

// DefaultBreakerConfig is the breaker the scenario gets for `- breaker`.
func DefaultBreakerConfig() BreakerConfig {
	return BreakerConfig{
		Window:      Window{Calls: 100},
		MinCalls:    20,
		FailureRate: 50,
		SlowCall:    SlowCallConfig{Rate: 50},
		OpenFor:     5 * time.Second,
		Backoff:     BackoffConfig{Multiplier: 2, Max: time.Minute, Jitter: 20},
		HalfOpen:    HalfOpenConfig{Probes: 5, Successes: 3},
		Failure:     DefaultFailure(),
	}
}

var _ Config = (*BreakerConfig)(nil)

// Kind implements Config.
func (*BreakerConfig) Kind() string { return "breaker" }

// Check implements Config.
func (c *BreakerConfig) Check(problem func(field, msg string)) {
	c.Window.check("window", problem)
	if c.MinCalls < 1 {
		problem("min_calls", "must be at least 1")
	} else if c.Window.Calls > 0 && c.MinCalls > c.Window.Calls {
		problem("min_calls", fmt.Sprintf("%d is more than the window's %d calls: no rate could ever be judged", c.MinCalls, c.Window.Calls))
	}
	checkPercent("failure_rate", c.FailureRate, problem)
	if c.SlowCall.Over < 0 {
		problem("slow_call.over", "must not be negative")
	}
	checkPercent("slow_call.rate", c.SlowCall.Rate, problem)
	if c.SlowCall.Over > 0 && c.SlowCall.Rate == 0 {
		problem("slow_call.rate", "must be above 0% when slow_call.over is set")
	}
	if c.ConsecutiveFailures < 0 {
		problem("consecutive_failures", "must not be negative (0 turns the check off)")
	}
	if c.OpenFor <= 0 {
		problem("open_for", "must be above zero, e.g. 5s")
	}
	if math.IsNaN(c.Backoff.Multiplier) || c.Backoff.Multiplier < 1 {
		problem("backoff.multiplier", "must be at least 1 (1 keeps the wait constant)")
	}
	if c.Backoff.Max < c.OpenFor {
		problem("backoff.max", fmt.Sprintf("%v is shorter than open_for %v", c.Backoff.Max, c.OpenFor))
	}
	checkPercent("backoff.jitter", c.Backoff.Jitter, problem)
	if c.Backoff.Jitter >= 100 {
		problem("backoff.jitter", "must be below 100%, or a wait could be zero")
	}
	if c.HalfOpen.Probes < 1 {
		problem("half_open.probes", "must be at least 1: a half-open breaker that admits no probe never closes")
	}
	if c.HalfOpen.Successes < 1 {
		problem("half_open.successes", "must be at least 1")
	} else if c.HalfOpen.Probes >= 1 && c.HalfOpen.Successes > c.HalfOpen.Probes {
		problem("half_open.successes", fmt.Sprintf("%d is more than the %d probes admitted", c.HalfOpen.Successes, c.HalfOpen.Probes))
	}
	c.Failure.Check(prefixed("failure", problem))
}

// Build implements Config.
func (c *BreakerConfig) Build(name string, o Options) (Policy, error) {
	return build(NewBreaker(name, *c, o))
}

func checkPercent(field string, p quantity.Percent, problem func(field, msg string)) {
	switch {
	case math.IsNaN(float64(p)):
		problem(field, "is not a number")
	case p < 0:
		problem(field, fmt.Sprintf("%v is below 0%%", p))
	case p > 100:
		problem(field, fmt.Sprintf("%v is above 100%%", p))
	}
}

// Breaker states.
const (
	breakerClosed int32 = iota
	breakerOpen
	breakerHalfOpen
)

var breakerStates = []string{"closed", "open", "half_open"}

// Breaker rejection reasons.
const (
	reasonOpen = iota
	reasonHalfOpenFull
)

// Breaker is a circuit breaker. Its hot path takes no lock: the current
// state lives in an immutable epoch behind an atomic pointer, and a closed
// breaker's Acquire is one atomic load and one counter increment.
type Breaker struct {
	core
	cfg      BreakerConfig
	failures classifier
	rand     *rng

	cur     atomic.Pointer[epoch]
	reopens int // failed probe rounds in a row; guarded by mu
	// closedAdmits counts the calls a closed breaker admits, striped so
	// that parallel callers do not contend on one counter.
	closedAdmits stripedCounter
}

// epoch is one stay in one state. Outcomes of calls admitted in an earlier
// epoch are ignored.
type epoch struct {
	state int32
	gen   uint64

	// closed
	count       *countWindow
	time        *timeWindow
	consecutive atomic.Int64

	// open
	until int64

	// half-open
	probes    atomic.Int64
	successes atomic.Int64
}

var _ Policy = (*Breaker)(nil)

// NewBreaker returns a closed breaker.
func NewBreaker(name string, c BreakerConfig, o Options) (*Breaker, error) {
	if err := validate(&c, name); err != nil {
		return nil, err
	}
	b := &Breaker{cfg: c, failures: newClassifier(c.Failure), rand: newRNG(o.Seed, name)}
	b.init("breaker", name, o, breakerStates, []string{"open", "half_open_full"}, unavailable(ErrOpen))
	b.admittedHook = func() uint64 { return b.admitted.Load() + b.closedAdmits.load() }
	b.cur.Store(b.closedEpoch(1, b.clk.nanos()))
	return b, nil
}

func (b *Breaker) closedEpoch(gen uint64, now int64) *epoch {
	e := &epoch{state: breakerClosed, gen: gen}
	if b.cfg.Window.Duration > 0 {
		e.time = newTimeWindow(time.Second, int(b.cfg.Window.Duration/time.Second), now)
	} else {
		e.count = newCountWindow(b.cfg.Window.Calls)
	}
	return e
}

const probeFlag = 1

// Acquire implements Policy. A closed breaker's Acquire is one atomic load
// and one increment of a striped counter.
func (b *Breaker) Acquire(_ context.Context, _ *Request) (Permit, error) {
	e := b.cur.Load()
	if e.state == breakerClosed {
		b.closedAdmits.add()
		return Permit{gen: e.gen}, nil
	}
	p, _, err := b.acquireSlow(e, -1)
	return p, err
}

func (*Breaker) instant() {}

// admitClosed admits a call if the breaker is closed, and reports false
// otherwise, for acquireSlow to decide; it is small enough to be inlined
// into a chain's loop.
func (b *Breaker) admitClosed() (Permit, bool) {
	e := b.cur.Load()
	if e.state != breakerClosed {
		return Permit{}, false
	}
	b.closedAdmits.add()
	return Permit{gen: e.gen}, true
}

// acquireSlow admits a call to a breaker that is not closed, at now; a
// negative now reads the clock if needed. It returns the time it used.
func (b *Breaker) acquireSlow(e *epoch, now int64) (Permit, int64, error) {
	for {
		switch e.state {
		case breakerClosed:
			b.closedAdmits.add()
			return Permit{gen: e.gen}, now, nil
		case breakerOpen:
			now = b.clk.or(now)
			if now < e.until {
				return Permit{}, now, b.reject(reasonOpen, time.Duration(e.until-now))
			}
			e = b.halfOpen(e, now)
		default:
			if e.probes.Add(1) > int64(b.cfg.HalfOpen.Probes) {
				e.probes.Add(-1)
				return Permit{}, now, b.reject(reasonHalfOpenFull, 0)
			}
			b.admitted.Add(1)
			return Permit{gen: e.gen, flag: probeFlag}, now, nil
		}
	}
}

// halfOpen moves an open epoch whose wait is over to half-open and returns
// the current epoch.
func (b *Breaker) halfOpen(e *epoch, now int64) *epoch {
	b.mu.Lock()
	defer b.mu.Unlock()
	if cur := b.cur.Load(); cur != e {
		return cur
	}
	next := &epoch{state: breakerHalfOpen, gen: e.gen + 1}
	b.cur.Store(next)
	b.transition(breakerOpen, breakerHalfOpen, now)
	return next
}

// Release implements Policy.
func (b *Breaker) Release(p Permit, o Outcome) { b.releaseAt(p, &o, -1) }

// needsTime reports whether Release reads the time: a window of seconds,
// or a slow-call threshold.
func (b *Breaker) needsTime() bool { return b.cfg.Window.Duration > 0 || b.cfg.SlowCall.Over > 0 }

// releaseAt is Release at now; a negative now reads the clock if needed.
func (b *Breaker) releaseAt(p Permit, o *Outcome, now int64) {
	e := b.cur.Load()
	if e.gen != p.gen {
		return // admitted in an earlier state: what it says is stale
	}
	v, ok := b.failures.answered(o)
	if !ok {
		v = b.failures.classifyOther(o)
	}
	if v == ignored {
		if p.flag&probeFlag != 0 {
			e.probes.Add(-1) // let another call probe instead
		}
		return
	}
	slow := b.cfg.SlowCall.Over > 0 && o.Duration > b.cfg.SlowCall.Over
	if e.state == breakerHalfOpen {
		if v == failure || slow {
			b.open(e, b.clk.or(now), true)
		} else if e.successes.Add(1) >= int64(b.cfg.HalfOpen.Successes) {
			b.close(e)
		}
		return
	}
	if e.state != breakerClosed {
		return
	}
	m := markCall
	if v == failure {
		m |= markFail
	}
	if slow {
		m |= markSlow
	}
	var calls, fails, slows int64
	if e.time != nil {
		now = b.clk.or(now)
		calls, fails, slows = e.time.record(now, m)
	} else {
		calls, fails, slows = e.count.record(m)
	}
	var run int64
	if v == failure {
		run = e.consecutive.Add(1)
	} else if e.consecutive.Load() != 0 {
		e.consecutive.Store(0)
	}
	// A window without a failure or a slow call, after a success, is
	// not tripped by any rule: most calls need not ask.
	if fails|slows|run != 0 && b.trips(calls, fails, slows, run) {
		b.open(e, b.clk.or(now), false)
	}
}

func (b *Breaker) trips(calls, fails, slows, run int64) bool {
	if n := b.cfg.ConsecutiveFailures; n > 0 && run >= int64(n) {
		return true
	}
	if calls < int64(b.cfg.MinCalls) {
		return false
	}
	if r := b.cfg.FailureRate; r > 0 && float64(fails) >= r.Fraction()*float64(calls) {
		return true
	}
	if b.cfg.SlowCall.Over > 0 && float64(slows) >= b.cfg.SlowCall.Rate.Fraction()*float64(calls) {
		return true
	}
	return false
}

// open trips a closed breaker, or reopens a half-open one whose probe
// failed, with a longer wait.
func (b *Breaker) open(e *epoch, now int64, probeFailed bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur.Load() != e {
		return
	}
	if probeFailed {
		b.reopens++
	} else {
		b.reopens = 0
	}
	next := &epoch{state: breakerOpen, gen: e.gen + 1, until: now + int64(b.openWait())}
	b.cur.Store(next)
	b.transition(e.state, breakerOpen, now)
}

// openWait is the wait for the current run of failed probes; the caller
// holds mu.
func (b *Breaker) openWait() time.Duration {
	if b.reopens == 0 {
		return b.cfg.OpenFor
	}
	w := float64(b.cfg.OpenFor) * math.Pow(b.cfg.Backoff.Multiplier, float64(b.reopens))
	if j := b.cfg.Backoff.Jitter.Fraction(); j > 0 {
		w *= 1 + j*(2*b.rand.float64()-1)
	}
	return time.Duration(min(w, float64(b.cfg.Backoff.Max)))
}

func (b *Breaker) close(e *epoch) {
	now := b.clk.nanos()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur.Load() != e {
		return
	}
	b.reopens = 0
	b.cur.Store(b.closedEpoch(e.gen+1, now))
	b.transition(breakerHalfOpen, breakerClosed, now)
}

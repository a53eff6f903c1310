package guard

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resctl/resctl/quantity"
)

// ConcurrencyBreakerConfig configures the gateway strategy of breaking on
// load rather than on errors: the breaker trips when calls in flight pass
// a ceiling, or when the recent P99 latency stays above a multiple of its
// own learned baseline for M of the last N samples. Both triggers drive
// one state machine: closed, overloaded (tripped by in-flight), degraded
// (tripped by latency), recovering (admitting a few probes).
type ConcurrencyBreakerConfig struct {
	// MaxInFlight is the ceiling; 0 turns the in-flight trigger off.
	MaxInFlight int        `yaml:"max_in_flight"`
	P99         P99Trigger `yaml:"p99"`
	// OpenFor is how long the breaker rejects once tripped.
	OpenFor time.Duration `yaml:"open_for"`
	// Probes is the most calls in flight while recovering.
	Probes int `yaml:"probes"`
}

// P99Trigger trips the breaker on latency. A sample is the P99 of the
// calls that ended in one Interval (once it holds MinCalls); the baseline
// is learned from the first Warmup samples and then follows healthy
// samples with weight Learning.
type P99Trigger struct {
	// Multiple of the baseline above which a sample is a breach; 0 turns
	// the latency trigger off.
	Multiple float64 `yaml:"multiple"`
	// Breaches of the last Samples samples trip the breaker.
	Breaches int `yaml:"breaches"`
	// Samples is how many of the latest samples Breaches counts in.
	Samples int `yaml:"samples"`
	// Interval is the span of calls one sample's P99 is taken over.
	Interval time.Duration `yaml:"interval"`
	// MinCalls is the fewest calls that make an interval a sample.
	MinCalls int `yaml:"min_calls"`
	// Warmup is how many samples the baseline is first learned from.
	Warmup int `yaml:"warmup"`
	// Learning is the weight of each healthy sample in the baseline after
	// warm-up.
	Learning quantity.Percent `yaml:"learning"`
}

// DefaultConcurrencyBreakerConfig trips at 1000 calls in flight, or when
// P99 is above twice its baseline for 3 of the last 5 one-second samples.
func DefaultConcurrencyBreakerConfig() ConcurrencyBreakerConfig {
	return ConcurrencyBreakerConfig{
		MaxInFlight: 1000,
		P99: P99Trigger{
			Multiple: 2, Breaches: 3, Samples: 5, Interval: time.Second,
			MinCalls: 10, Warmup: 5, Learning: 10,
		},
		OpenFor: 5 * time.Second,
		Probes:  5,
	}
}

var _ Config = (*ConcurrencyBreakerConfig)(nil)

// Kind implements Config.
func (*ConcurrencyBreakerConfig) Kind() string { return "concurrency_breaker" }

// Check implements Config.
func (c *ConcurrencyBreakerConfig) Check(problem func(field, msg string)) {
	if c.MaxInFlight < 0 {
		problem("max_in_flight", "must not be negative (0 turns the ceiling off)")
	}
	p := c.P99
	if math.IsNaN(p.Multiple) || p.Multiple < 0 || (p.Multiple > 0 && p.Multiple <= 1) {
		problem("p99.multiple", "must be above 1 (or 0 to turn the latency trigger off)")
	}
	if c.MaxInFlight == 0 && p.Multiple == 0 {
		problem("max_in_flight", "and p99.multiple are both off: the breaker could never trip")
	}
	if p.Samples < 1 {
		problem("p99.samples", "must be at least 1")
	}
	if p.Breaches < 1 {
		problem("p99.breaches", "must be at least 1")
	} else if p.Samples >= 1 && p.Breaches > p.Samples {
		problem("p99.breaches", fmt.Sprintf("%d is more than the %d samples judged", p.Breaches, p.Samples))
	}
	if p.Interval <= 0 {
		problem("p99.interval", "must be above zero, e.g. 1s")
	}
	if p.MinCalls < 1 {
		problem("p99.min_calls", "must be at least 1")
	}
	if p.Warmup < 1 {
		problem("p99.warmup", "must be at least 1 sample")
	}
	checkPercent("p99.learning", p.Learning, problem)
	if c.OpenFor <= 0 {
		problem("open_for", "must be above zero, e.g. 5s")
	}
	if c.Probes < 1 {
		problem("probes", "must be at least 1: a recovering breaker that admits nothing never closes")
	}
}

// Build implements Config.
func (c *ConcurrencyBreakerConfig) Build(name string, o Options) (Policy, error) {
	return build(NewConcurrencyBreaker(name, *c, o))
}

// Concurrency breaker states.
const (
	cbClosed int32 = iota
	cbOverloaded
	cbDegraded
	cbRecovering
)

// Concurrency breaker rejection reasons.
const (
	reasonInFlight = iota
	reasonP99
	reasonRecovering
)

// ConcurrencyBreaker trips on load: in-flight calls or P99 latency.
type ConcurrencyBreaker struct {
	core
	cfg ConcurrencyBreakerConfig

	inFlight atomic.Int64
	until    atomic.Int64 // end of the open wait
	hist     latencyHist
	due      atomic.Int64 // end of the current sample interval

	moves atomic.Int64 // transitions so far

	smu      sync.Mutex // guards the sample history below
	pending  histSnapshot
	pendingN int64   // moves when pending began
	baseline float64 // nanoseconds
	warm     int
	ring     []bool
	rpos     int
}

var _ Policy = (*ConcurrencyBreaker)(nil)

// NewConcurrencyBreaker returns a closed breaker with no baseline yet.
func NewConcurrencyBreaker(name string, c ConcurrencyBreakerConfig, o Options) (*ConcurrencyBreaker, error) {
	if err := validate(&c, name); err != nil {
		return nil, err
	}
	b := &ConcurrencyBreaker{cfg: c, ring: make([]bool, c.P99.Samples)}
	b.init("concurrency_breaker", name, o, []string{"closed", "overloaded", "degraded", "recovering"},
		[]string{"in_flight", "p99", "recovering"}, unavailable(ErrOpen))
	b.due.Store(b.clk.nanos() + int64(c.P99.Interval))
	return b, nil
}

// InFlight is how many admitted calls have not ended.
func (b *ConcurrencyBreaker) InFlight() int64 { return b.inFlight.Load() }

// Limit is the in-flight ceiling of the current state.
func (b *ConcurrencyBreaker) Limit() float64 {
	if b.state.Load() == cbRecovering {
		return float64(b.cfg.Probes)
	}
	return float64(b.cfg.MaxInFlight)
}

// Baseline is the learned P99 baseline, or 0 while warming up.
func (b *ConcurrencyBreaker) Baseline() time.Duration {
	b.smu.Lock()
	defer b.smu.Unlock()
	if b.warm < b.cfg.P99.Warmup {
		return 0
	}
	return time.Duration(b.baseline)
}

// Acquire implements Policy.
func (b *ConcurrencyBreaker) Acquire(_ context.Context, _ *Request) (Permit, error) {
	for {
		switch st := b.state.Load(); st {
		case cbClosed:
			n := b.inFlight.Add(1)
			if max := b.cfg.MaxInFlight; max > 0 && n > int64(max) {
				b.inFlight.Add(-1)
				now := b.clk.nanos()
				b.trip(cbClosed, cbOverloaded, now)
				return Permit{}, b.reject(reasonInFlight, b.cfg.OpenFor)
			}
			b.admitted.Add(1)
			return Permit{}, nil
		case cbOverloaded, cbDegraded:
			now := b.clk.nanos()
			if u := b.until.Load(); now < u {
				reason := reasonInFlight
				if st == cbDegraded {
					reason = reasonP99
				}
				return Permit{}, b.reject(reason, time.Duration(u-now))
			}
			b.mu.Lock()
			if b.state.Load() == st {
				b.move(st, cbRecovering, now)
			}
			b.mu.Unlock()
		default:
			if b.inFlight.Add(1) > int64(b.cfg.Probes) {
				b.inFlight.Add(-1)
				return Permit{}, b.reject(reasonRecovering, 0)
			}
			b.admitted.Add(1)
			return Permit{}, nil
		}
	}
}

// move is transition for this breaker: latencies seen in one state say
// nothing of the next, so the histogram starts afresh.
func (b *ConcurrencyBreaker) move(from, to int32, now int64) {
	b.moves.Add(1)
	b.hist.take()
	b.transition(from, to, now)
}

// trip opens the breaker from state from, if it is still there.
func (b *ConcurrencyBreaker) trip(from, to int32, now int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state.Load() != from {
		return
	}
	b.until.Store(now + int64(b.cfg.OpenFor))
	b.move(from, to, now)
}

// Release implements Policy.
func (b *ConcurrencyBreaker) Release(_ Permit, o Outcome) {
	b.inFlight.Add(-1)
	if o.Skipped || (o.Err != nil && errors.Is(o.Err, context.Canceled)) {
		return // only calls that reached the upstream say anything of its latency
	}
	// A call that ends after the interval belongs to the next sample:
	// close the interval first.
	now := b.clk.nanos()
	if due := b.due.Load(); now >= due && b.due.CompareAndSwap(due, now+int64(b.cfg.P99.Interval)) {
		b.sample(now)
	}
	b.hist.record(int64(o.Duration))
}

// sample judges the calls of the interval that just ended.
func (b *ConcurrencyBreaker) sample(now int64) {
	b.smu.Lock()
	defer b.smu.Unlock()
	snap := b.hist.take()
	if m := b.moves.Load(); m != b.pendingN {
		b.pending, b.pendingN = histSnapshot{}, m
	}
	b.pending.add(&snap)
	if b.pending.total < uint64(b.cfg.P99.MinCalls) {
		return // too few calls to judge: carry them into the next interval
	}
	p99 := float64(b.pending.quantile(0.99))
	b.pending = histSnapshot{}
	p := b.cfg.P99
	healthy := p.Multiple == 0 || b.warm < p.Warmup || p99 <= p.Multiple*b.baseline

	switch b.state.Load() {
	case cbRecovering:
		b.mu.Lock()
		if b.state.Load() == cbRecovering {
			if healthy {
				clear(b.ring)
				b.move(cbRecovering, cbClosed, now)
			} else {
				b.until.Store(now + int64(b.cfg.OpenFor))
				b.move(cbRecovering, cbDegraded, now)
			}
		}
		b.mu.Unlock()
		return
	case cbClosed:
	default:
		return
	}
	if p.Multiple == 0 {
		return
	}
	if b.warm < p.Warmup {
		b.warm++
		b.baseline += (p99 - b.baseline) / float64(b.warm) // the warm-up's mean
		return
	}
	b.ring[b.rpos] = !healthy
	b.rpos = (b.rpos + 1) % len(b.ring)
	if healthy {
		b.baseline += p.Learning.Fraction() * (p99 - b.baseline)
	}
	breaches := 0
	for _, br := range b.ring {
		if br {
			breaches++
		}
	}
	if breaches >= p.Breaches {
		clear(b.ring)
		b.trip(cbClosed, cbDegraded, now)
	}
}

package guard

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resctl/resctl/quantity"
)

// ConcurrencyBreakerConfig configures the gateway strategy of breaking on
// load rather than on errors: the breaker trips when calls in flight pass
// a ceiling, when the process's goroutines pass theirs, or when the recent
// P99 latency (or the goroutine count, or both together) stays above a
// multiple of its own learned baseline for M of the last N samples. The
// triggers drive one state machine: closed, overloaded (tripped by a
// ceiling), degraded (tripped by samples), recovering (admitting a few
// probes).
type ConcurrencyBreakerConfig struct {
	// MaxInFlight is the ceiling; 0 turns the in-flight trigger off.
	MaxInFlight int        `yaml:"max_in_flight"`
	P99         P99Trigger `yaml:"p99"`
	// Goroutines watches the process's goroutine count, read once per
	// p99.interval.
	Goroutines GoroutineTrigger `yaml:"goroutines"`
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

// GoroutineTrigger trips the breaker on the process's goroutine count
// (runtime/metrics /sched/goroutines:goroutines): calls that pile up
// waiting on a slow dependency show there before their latency does. Its
// baseline is the mean of the first p99.warmup samples, then follows
// healthy samples with weight p99.learning; its breaches count in the same
// M-of-N window as the P99's.
type GoroutineTrigger struct {
	// Max is a ceiling: a count above it trips the breaker at once, as
	// max_in_flight does. 0 turns it off.
	Max int `yaml:"max"`
	// Multiple of the learned baseline above which a sample is a breach;
	// 0 turns it off.
	Multiple float64 `yaml:"multiple"`
	// WithP99 makes a P99 sample a breach only while the goroutine count
	// is above its multiple too: degrading on goroutines and latency
	// together, rather than on either.
	WithP99 bool `yaml:"with_p99"`
}

// GoroutineSignal is implemented by Signals that can count the process's
// goroutines; the concurrency breaker's goroutine trigger reads it, and
// falls back to the Go runtime's count when Options.Signals has none.
type GoroutineSignal interface {
	Goroutines() int
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
	g := c.Goroutines
	if c.MaxInFlight == 0 && p.Multiple == 0 && g.Max == 0 && g.Multiple == 0 {
		problem("max_in_flight", "p99.multiple and goroutines are all off: the breaker could never trip")
	}
	if g.Max < 0 {
		problem("goroutines.max", "must not be negative (0 turns the ceiling off)")
	}
	if math.IsNaN(g.Multiple) || g.Multiple < 0 || (g.Multiple > 0 && g.Multiple <= 1) {
		problem("goroutines.multiple", "must be above 1 (or 0 to turn it off)")
	}
	if g.WithP99 && (g.Multiple == 0 || p.Multiple == 0) {
		problem("goroutines.with_p99", "needs both goroutines.multiple and p99.multiple")
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
	reasonGoroutines
)

// ConcurrencyBreaker trips on load: in-flight calls or P99 latency.
type ConcurrencyBreaker struct {
	core
	cfg ConcurrencyBreakerConfig

	inFlight atomic.Int64
	until    atomic.Int64 // end of the open wait
	reason   atomic.Int32 // why it tripped: a rejection reason
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

	// The goroutine trigger: its reader, when its next sample is due,
	// its baseline and whether the last sample was above its multiple.
	goroutines func() int
	gdue       atomic.Int64
	gbase      float64
	gwarm      int
	gabove     bool
}

var _ Policy = (*ConcurrencyBreaker)(nil)

// NewConcurrencyBreaker returns a closed breaker with no baseline yet.
func NewConcurrencyBreaker(name string, c ConcurrencyBreakerConfig, o Options) (*ConcurrencyBreaker, error) {
	if err := validate(&c, name); err != nil {
		return nil, err
	}
	b := &ConcurrencyBreaker{cfg: c, ring: make([]bool, c.P99.Samples)}
	b.init("concurrency_breaker", name, o, []string{"closed", "overloaded", "degraded", "recovering"},
		[]string{"in_flight", "p99", "recovering", "goroutines"}, unavailable(ErrOpen))
	b.due.Store(b.clk.nanos() + int64(c.P99.Interval))
	if c.Goroutines.Max > 0 || c.Goroutines.Multiple > 0 {
		b.goroutines = runtime.NumGoroutine
		if g, ok := signalsOf(o).(GoroutineSignal); ok {
			b.goroutines = g.Goroutines
		}
		b.gdue.Store(b.clk.nanos())
	}
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
			if b.goroutines != nil {
				if now := b.clk.nanos(); now >= b.gdue.Load() {
					b.sampleGoroutines(now)
					continue
				}
			}
			n := b.inFlight.Add(1)
			if max := b.cfg.MaxInFlight; max > 0 && n > int64(max) {
				b.inFlight.Add(-1)
				now := b.clk.nanos()
				b.trip(cbClosed, cbOverloaded, now, reasonInFlight)
				return Permit{}, b.reject(reasonInFlight, b.cfg.OpenFor)
			}
			b.admitted.Add(1)
			return Permit{}, nil
		case cbOverloaded, cbDegraded:
			now := b.clk.nanos()
			if u := b.until.Load(); now < u {
				return Permit{}, b.reject(int(b.reason.Load()), time.Duration(u-now))
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

func (*ConcurrencyBreaker) instant() {}

// move is transition for this breaker: latencies seen in one state say
// nothing of the next, so the histogram starts afresh.
func (b *ConcurrencyBreaker) move(from, to int32, now int64) {
	b.moves.Add(1)
	b.hist.take()
	b.transition(from, to, now)
}

// trip opens the breaker from state from, if it is still there, for
// reason.
func (b *ConcurrencyBreaker) trip(from, to int32, now int64, reason int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state.Load() != from {
		return
	}
	b.reason.Store(int32(reason))
	b.until.Store(now + int64(b.cfg.OpenFor))
	b.move(from, to, now)
}

// Release implements Policy.
func (b *ConcurrencyBreaker) Release(_ Permit, o Outcome) {
	b.inFlight.Add(-1)
	if o.Skipped || (o.Err != nil && (errors.Is(o.Err, context.Canceled) || !(o.Timeout || isNetTimeout(o.Err)))) {
		// Only calls that reached the upstream say anything of its
		// latency (Outcome.Err is one that did not): a refused
		// connection's instant failure would teach the baseline a speed
		// the upstream never had, and hold it to that once it answers
		// again. A timeout, the outcome's or the network's, did take
		// its time.
		return
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
	if b.cfg.Goroutines.WithP99 && !b.gabove {
		healthy = true // latency alone does not degrade
	}

	switch b.state.Load() {
	case cbRecovering:
		b.mu.Lock()
		if b.state.Load() == cbRecovering {
			if healthy {
				clear(b.ring)
				b.move(cbRecovering, cbClosed, now)
			} else {
				b.reason.Store(reasonP99)
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
	if healthy {
		b.baseline += p.Learning.Fraction() * (p99 - b.baseline)
	}
	b.judge(!healthy, now, reasonP99)
}

// judge adds a sample to the M-of-N window and trips the breaker, for
// reason, when the window holds enough breaches. Call with smu held.
func (b *ConcurrencyBreaker) judge(breach bool, now int64, reason int) {
	b.ring[b.rpos] = breach
	b.rpos = (b.rpos + 1) % len(b.ring)
	breaches := 0
	for _, br := range b.ring {
		if br {
			breaches++
		}
	}
	if breaches >= b.cfg.P99.Breaches {
		clear(b.ring)
		b.trip(cbClosed, cbDegraded, now, reason)
	}
}

// sampleGoroutines reads the goroutine count once an interval, while the
// breaker is closed: above the ceiling it trips the breaker; against its
// learned baseline it is a sample of the M-of-N window of its own, or,
// with WithP99, the condition the P99's samples need to breach.
func (b *ConcurrencyBreaker) sampleGoroutines(now int64) {
	due := b.gdue.Load()
	if now < due || !b.gdue.CompareAndSwap(due, now+int64(b.cfg.P99.Interval)) {
		return
	}
	n := b.goroutines()
	g, p := b.cfg.Goroutines, b.cfg.P99
	if g.Max > 0 && n > g.Max {
		b.trip(cbClosed, cbOverloaded, now, reasonGoroutines)
		return
	}
	if g.Multiple == 0 {
		return
	}
	b.smu.Lock()
	defer b.smu.Unlock()
	x := float64(n)
	if b.gwarm < p.Warmup {
		b.gwarm++
		b.gbase += (x - b.gbase) / float64(b.gwarm)
		return
	}
	b.gabove = x > g.Multiple*b.gbase
	if !b.gabove {
		b.gbase += p.Learning.Fraction() * (x - b.gbase)
	}
	if !g.WithP99 && b.gabove {
		b.judge(true, now, reasonGoroutines)
	}
}

// isNetTimeout says whether err is a network timeout (an i/o deadline,
// "timeout awaiting response headers").
func isNetTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

package guard

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resctl/resctl/quantity"
)

// Adaptive limit algorithms.
const (
	// AlgorithmGradient scales the limit by no-load latency ÷ measured
	// latency (with a tolerance), plus a queue allowance of √limit, as
	// Netflix's concurrency-limits Gradient does.
	AlgorithmGradient = "gradient"
	// AlgorithmVegas estimates the queue as limit × (1 − no-load ÷
	// measured latency), as TCP Vegas does, and grows the limit while the
	// queue is under Alpha and shrinks it over Beta.
	AlgorithmVegas = "vegas"
)

// AdaptiveLimitConfig configures a concurrency limit that finds itself:
// it learns the upstream's no-load latency and lowers the limit as
// latency grows with queueing, raising it again when latency falls.
type AdaptiveLimitConfig struct {
	// Algorithm is gradient (the default), which scales the limit by how
	// much slower than no-load the upstream answers, or vegas, which
	// estimates the calls queued upstream.
	Algorithm string `yaml:"algorithm"`
	// InitialLimit is the limit before the first update.
	InitialLimit int `yaml:"initial_limit"`
	// MinLimit is the least the limit falls to.
	MinLimit int `yaml:"min_limit"`
	// MaxLimit is the most the limit grows to.
	MaxLimit int `yaml:"max_limit"`
	// Window is the shortest time between two updates of the limit;
	// WindowSamples the fewest completed calls an update needs.
	Window time.Duration `yaml:"window"`
	// WindowSamples is the fewest completed calls an update of the limit
	// needs.
	WindowSamples int `yaml:"window_samples"`
	// Smoothing is the weight of each new limit against the old one.
	Smoothing quantity.Percent `yaml:"smoothing"`
	// Tolerance (gradient) is how much slower than no-load the upstream
	// may answer before the limit shrinks: 1.5 allows 50%.
	Tolerance float64 `yaml:"tolerance"`
	// Alpha and Beta (vegas) bound the estimated queue, in calls.
	Alpha int `yaml:"alpha"`
	// Beta (vegas) is the estimated queue, in calls, above which the limit
	// shrinks.
	Beta int `yaml:"beta"`
	// Backoff multiplies the limit in a window where the upstream refused
	// calls or timed out (see Failure).
	Backoff quantity.Percent `yaml:"backoff"`
	// Relearn is how often the no-load latency is measured afresh, so that
	// an upstream that became slower for good is not held to its old best;
	// 0 never forgets.
	Relearn time.Duration `yaml:"relearn"`
	// Failure is what counts as the upstream refusing a call, which Backoff
	// answers.
	Failure FailureConfig `yaml:"failure"`
}

// DefaultAdaptiveLimitConfig starts at 20 calls and moves between 1 and
// 1000 with the gradient algorithm.
func DefaultAdaptiveLimitConfig() AdaptiveLimitConfig {
	return AdaptiveLimitConfig{
		Algorithm:     AlgorithmGradient,
		InitialLimit:  20,
		MinLimit:      1,
		MaxLimit:      1000,
		Window:        time.Second,
		WindowSamples: 10,
		Smoothing:     20,
		Tolerance:     1.5,
		Alpha:         3,
		Beta:          6,
		Backoff:       90,
		Relearn:       time.Minute,
		Failure:       overloadFailure(),
	}
}

var _ Config = (*AdaptiveLimitConfig)(nil)

// Kind implements Config.
func (*AdaptiveLimitConfig) Kind() string { return "adaptive_limit" }

// Check implements Config.
func (c *AdaptiveLimitConfig) Check(problem func(field, msg string)) {
	if c.Algorithm != AlgorithmGradient && c.Algorithm != AlgorithmVegas {
		problem("algorithm", fmt.Sprintf("unknown algorithm %q; use gradient or vegas", c.Algorithm))
	}
	if c.MinLimit < 1 {
		problem("min_limit", "must be at least 1")
	}
	if c.MaxLimit < c.MinLimit {
		problem("max_limit", fmt.Sprintf("%d is below min_limit %d", c.MaxLimit, c.MinLimit))
	}
	if c.InitialLimit < c.MinLimit || c.InitialLimit > c.MaxLimit {
		problem("initial_limit", fmt.Sprintf("%d is outside min_limit..max_limit (%d..%d)", c.InitialLimit, c.MinLimit, c.MaxLimit))
	}
	if c.Window <= 0 {
		problem("window", "must be above zero, e.g. 1s")
	}
	if c.WindowSamples < 1 {
		problem("window_samples", "must be at least 1")
	}
	checkPercent("smoothing", c.Smoothing, problem)
	if c.Smoothing == 0 {
		problem("smoothing", "must be above 0%, or the limit never moves")
	}
	if math.IsNaN(c.Tolerance) || c.Tolerance < 1 {
		problem("tolerance", "must be at least 1 (1 allows no slowdown)")
	}
	if c.Alpha < 1 {
		problem("alpha", "must be at least 1")
	}
	if c.Beta <= c.Alpha {
		problem("beta", fmt.Sprintf("%d must be above alpha %d", c.Beta, c.Alpha))
	}
	checkPercent("backoff", c.Backoff, problem)
	if c.Backoff == 0 || c.Backoff == 100 {
		problem("backoff", "must be between 0% and 100% exclusive")
	}
	if c.Relearn < 0 {
		problem("relearn", "must not be negative (0 never forgets)")
	}
	c.Failure.Check(prefixed("failure", problem))
}

// Build implements Config.
func (c *AdaptiveLimitConfig) Build(name string, o Options) (Policy, error) {
	return build(NewAdaptiveLimit(name, *c, o))
}

// AdaptiveLimit is a concurrency limit learned from latency. Calls add to
// lock-free window counters; once per window one caller takes the lock
// and moves the limit. Its states are "passing" and "limiting".
//
// A busy limit times one call in every weight (a power of two), as
// concurrency-limit libraries sample their round trips: a window of
// thousands of calls averages its latency as well from a few hundred of
// them, and each call left untimed saves a chain a clock read, as much as
// a policy's own work. A sampled call counts for weight calls in the
// window's sums, so the average and window_samples mean what they meant.
// The weight stays 1, every call timed, until a window has seen
// 2 × minSampled calls, so that a quiet route learns exactly as before.
type AdaptiveLimit struct {
	core
	pressure
	cfg      AdaptiveLimitConfig
	failures classifier

	// What every call reads and writes, padded onto cache lines of its
	// own, so that parallel calls move one line between cores, not the
	// core's as well.
	_        [128]byte
	inFlight atomic.Int64
	admits   atomic.Uint64 // calls admitted; the core's count stays 0
	limitN   atomic.Int64
	// weight is the calls each timed call stands for: 1 in weight
	// admitted calls is timed.
	weight atomic.Int64
	peak   atomic.Int64 // most calls in flight in the current window
	_      [128 - 5*8]byte

	// the current window
	start   atomic.Int64
	samples atomic.Int64 // calls ended, timed calls counting weight each
	sum     atomic.Int64 // nanoseconds, each timed call's weighted
	drops   atomic.Int64

	upd       sync.Mutex // guards what follows
	limit     float64
	noLoad    int64
	noLoadAt  int64
	limitBits atomic.Uint64 // limit as float64 bits, for metrics
}

var _ Policy = (*AdaptiveLimit)(nil)

// NewAdaptiveLimit returns a limiter at its initial limit.
func NewAdaptiveLimit(name string, c AdaptiveLimitConfig, o Options) (*AdaptiveLimit, error) {
	if err := validate(&c, name); err != nil {
		return nil, err
	}
	a := &AdaptiveLimit{cfg: c, failures: newClassifier(c.Failure)}
	a.init("adaptive_limit", name, o, []string{"passing", "limiting"}, []string{"limit"}, unavailable(ErrLimited))
	a.admittedHook = a.admits.Load
	a.setLimit(float64(c.InitialLimit))
	a.weight.Store(1)
	a.start.Store(a.clk.nanos())
	return a, nil
}

// minSampled is the fewest timed calls a busy window averages: the weight
// doubles only once the window has timed twice as many, and a window
// sets the next one's weight to time at least as many of as many calls.
// maxWeight bounds the weight, and with it how many calls may end between
// two that read the clock and can close the window.
const (
	minSampled = 256
	maxWeight  = 64
)

// Limit is the current limit.
func (a *AdaptiveLimit) Limit() float64 { return math.Float64frombits(a.limitBits.Load()) }

// InFlight is how many admitted calls have not ended.
func (a *AdaptiveLimit) InFlight() int64 { return a.inFlight.Load() }

func (a *AdaptiveLimit) setLimit(l float64) {
	l = min(max(l, float64(a.cfg.MinLimit)), float64(a.cfg.MaxLimit))
	a.limit = l
	a.limitBits.Store(math.Float64bits(l))
	a.limitN.Store(int64(l))
}

// Acquire implements Policy.
func (a *AdaptiveLimit) Acquire(_ context.Context, _ *Request) (Permit, error) {
	return a.acquire(-1)
}

func (*AdaptiveLimit) instant() {}

// acquire admits a call at now; a negative now reads the clock if needed.
// The permit of a call to be timed carries timedFlag and, in gen, the
// weight it is sampled at.
func (a *AdaptiveLimit) acquire(now int64) (Permit, error) {
	n := a.inFlight.Add(1)
	if n > a.limitN.Load() {
		a.inFlight.Add(-1)
		a.onReject(&a.core, a.clk.or(now))
		return Permit{}, a.reject(0, 0)
	}
	for p := a.peak.Load(); n > p && !a.peak.CompareAndSwap(p, n); p = a.peak.Load() {
	}
	seq := a.admits.Add(1)
	a.onAdmit(&a.core, now)
	if w := a.weight.Load(); seq&uint64(w-1) == 0 {
		return Permit{gen: uint64(w), flag: timedFlag}, nil
	}
	return Permit{}, nil
}

// Release implements Policy. Of the calls that succeeded it learns from
// the Duration of the timed ones only.
func (a *AdaptiveLimit) Release(p Permit, o Outcome) { a.releaseAt(p, &o, -1) }

func (*AdaptiveLimit) sampling() {}

// releaseAt is Release at now; a negative now reads the clock when the
// call is one to learn from.
func (a *AdaptiveLimit) releaseAt(p Permit, o *Outcome, now int64) {
	a.inFlight.Add(-1)
	v, ok := a.failures.answered(o)
	if !ok {
		v = a.failures.classifyOther(o)
	}
	switch v {
	case ignored:
		return
	case failure:
		a.drops.Add(1)
	default:
		if p.flag&timedFlag == 0 {
			return
		}
		w := int64(p.gen)
		a.sum.Add(int64(o.Duration) * w)
		if n := a.samples.Add(w); w < maxWeight && n >= 2*minSampled*w {
			a.weight.CompareAndSwap(w, 2*w)
		}
	}
	now = a.clk.or(now)
	if now-a.start.Load() < int64(a.cfg.Window) {
		return
	}
	if (a.samples.Load() >= int64(a.cfg.WindowSamples) || a.drops.Load() > 0) && a.upd.TryLock() {
		a.update(now)
		a.upd.Unlock()
	}
}

// update closes the window and moves the limit; the caller holds upd.
func (a *AdaptiveLimit) update(now int64) {
	if now-a.start.Load() < int64(a.cfg.Window) {
		return // another caller closed this window first
	}
	a.start.Store(now)
	n, sum := a.samples.Swap(0), a.sum.Swap(0)
	drops := a.drops.Swap(0)
	peak := a.peak.Swap(a.inFlight.Load())
	w := int64(1)
	for w < maxWeight && n >= 2*minSampled*2*w {
		w *= 2
	}
	a.weight.Store(w)
	if drops > 0 {
		a.setLimit(a.limit * a.cfg.Backoff.Fraction())
		return
	}
	if n == 0 {
		return
	}
	rtt := max(sum/n, 1)
	if a.noLoad == 0 || rtt < a.noLoad || (a.cfg.Relearn > 0 && now-a.noLoadAt >= int64(a.cfg.Relearn)) {
		a.noLoad, a.noLoadAt = rtt, now
	}
	ratio := float64(a.noLoad) / float64(rtt)
	appLimited := float64(peak) < a.limit/2
	next := a.limit
	switch a.cfg.Algorithm {
	case AlgorithmVegas:
		queue := a.limit * (1 - ratio)
		step := max(1, math.Log10(a.limit))
		switch {
		case queue > float64(a.cfg.Beta):
			next = a.limit - step
		case queue < float64(a.cfg.Alpha) && !appLimited:
			next = a.limit + step
		}
	default:
		gradient := min(1, max(0.5, a.cfg.Tolerance*ratio))
		next = a.limit*gradient + math.Sqrt(a.limit)
		if appLimited && next > a.limit {
			next = a.limit
		}
	}
	s := a.cfg.Smoothing.Fraction()
	a.setLimit(a.limit*(1-s) + next*s)
}

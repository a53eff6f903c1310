package inject

import (
	"math"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// Latency distributions.
const (
	// DistUniform draws delay ± jitter uniformly.
	DistUniform = "uniform"
	// DistNormal draws from a normal distribution with mean delay and
	// standard deviation jitter, never below zero.
	DistNormal = "normal"
	// DistPareto draws a heavy tail: delay is the minimum and shape the
	// Pareto index (smaller is heavier); draws are capped at max.
	DistPareto = "pareto"
)

// DefaultParetoShape is the Pareto index used when the scenario does not
// say: about one request in a hundred waits ten times the minimum delay.
const DefaultParetoShape = 2.0

// LatencySpec delays matching requests before they are forwarded: by Delay,
// plus or minus a uniformly drawn Jitter, or drawn from a distribution.
type LatencySpec struct {
	Match `yaml:",inline"`
	// Delay is how long each request is held (the mean, or the minimum for
	// pareto).
	Delay time.Duration `yaml:"delay"`
	// Jitter varies the delay: ± uniformly, or the standard deviation for
	// normal.
	Jitter time.Duration `yaml:"jitter"`
	// Distribution is uniform (the default), normal or pareto.
	Distribution string `yaml:"distribution"`
	// Shape is the Pareto index; zero means DefaultParetoShape.
	Shape float64 `yaml:"shape"`
	// Max caps every draw; zero means ten times the delay for pareto and
	// no cap otherwise.
	Max time.Duration `yaml:"max"`
}

var _ HTTPSpec = (*LatencySpec)(nil)

// Kind implements Spec.
func (*LatencySpec) Kind() string { return "latency" }

// Check implements Spec.
func (s *LatencySpec) Check(problem func(field, msg string)) {
	s.Match.check(problem)
	checkDelay(s.Delay, s.Jitter, s.Distribution, s.Shape, s.Max, problem)
}

// checkDelay checks the delay parameters shared by the HTTP and TCP
// latency faults.
func checkDelay(delay, jitter time.Duration, dist string, shape float64, maxd time.Duration, problem func(field, msg string)) {
	if delay <= 0 {
		problem("delay", "must be above zero, e.g. 300ms")
	}
	if jitter < 0 {
		problem("jitter", "must not be negative")
	}
	switch dist {
	case "", DistUniform:
		if jitter > delay && delay > 0 {
			problem("jitter", "must not exceed delay, or some delays would be negative")
		}
	case DistNormal:
	case DistPareto:
		if shape < 0 || math.IsNaN(shape) || math.IsInf(shape, 0) {
			problem("shape", "must be above zero, e.g. 2")
		}
	default:
		problem("distribution", "must be uniform, normal or pareto")
	}
	if maxd < 0 {
		problem("max", "must not be negative")
	}
}

// Build implements HTTPSpec.
func (s *LatencySpec) Build() HTTPFault {
	return &latency{delays: newDelays(s.Delay, s.Jitter, s.Distribution, s.Shape, s.Max)}
}

// delays draws delays from a configured distribution. A Board reseeds the
// generator from the run's seed and the fault's id; the default keeps a
// fault built on its own usable.
type delays struct {
	delay, jitter, max time.Duration
	dist               string
	shape              float64

	mu  sync.Mutex
	rng *rand.Rand
}

func newDelays(delay, jitter time.Duration, dist string, shape float64, maxd time.Duration) *delays {
	if shape == 0 {
		shape = DefaultParetoShape
	}
	if dist == DistPareto && maxd == 0 {
		maxd = 10 * delay
	}
	return &delays{delay: delay, jitter: jitter, dist: dist, shape: shape, max: maxd, rng: rand.New(rand.NewPCG(0, 0))}
}

func (d *delays) seed(r *rand.Rand) { d.rng = r }

func (d *delays) next() time.Duration {
	var w time.Duration
	switch d.dist {
	case DistNormal:
		d.mu.Lock()
		v := d.rng.NormFloat64()
		d.mu.Unlock()
		w = max(d.delay+time.Duration(v*float64(d.jitter)), 0)
	case DistPareto:
		d.mu.Lock()
		u := 1 - d.rng.Float64() // in (0, 1]
		d.mu.Unlock()
		w = time.Duration(float64(d.delay) * math.Pow(u, -1/d.shape))
	default:
		if d.jitter == 0 {
			return d.delay
		}
		d.mu.Lock()
		j := time.Duration(d.rng.Int64N(int64(2*d.jitter)+1)) - d.jitter
		d.mu.Unlock()
		w = d.delay + j
	}
	if d.max > 0 && w > d.max {
		w = d.max
	}
	return w
}

type latency struct{ delays *delays }

var _ seeded = (*latency)(nil)

func (l *latency) seed(r *rand.Rand) { l.delays.seed(r) }

func (l *latency) wait() time.Duration { return l.delays.next() }

// Inject waits, then lets the request go on; a client that gives up while
// waiting ends the wait at once.
func (l *latency) Inject(_ http.ResponseWriter, r *http.Request) bool {
	sleep(r.Context(), l.wait())
	return false
}

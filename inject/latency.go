package inject

import (
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// LatencySpec delays matching requests by Delay, plus or minus a uniformly
// drawn Jitter, before they are forwarded.
type LatencySpec struct {
	Match  `yaml:",inline"`
	Delay  time.Duration `yaml:"delay"`
	Jitter time.Duration `yaml:"jitter"`
}

var _ Spec = (*LatencySpec)(nil)

// Kind implements Spec.
func (*LatencySpec) Kind() string { return "latency" }

// Check implements Spec.
func (s *LatencySpec) Check(problem func(field, msg string)) {
	s.Match.check(problem)
	if s.Delay <= 0 {
		problem("delay", "must be above zero, e.g. 300ms")
	}
	if s.Jitter < 0 {
		problem("jitter", "must not be negative")
	}
	if s.Jitter > s.Delay && s.Delay > 0 {
		problem("jitter", "must not exceed delay, or some delays would be negative")
	}
}

// Build implements Spec.
func (s *LatencySpec) Build() HTTPFault {
	// A Board reseeds the generator from the run's seed and the fault's
	// id; this default keeps a fault built on its own usable.
	return &latency{delay: s.Delay, jitter: s.Jitter, rng: rand.New(rand.NewPCG(0, 0))}
}

type latency struct {
	delay, jitter time.Duration

	mu  sync.Mutex
	rng *rand.Rand // reseeded by the Board
}

var _ seeded = (*latency)(nil)

func (l *latency) seed(r *rand.Rand) { l.rng = r }

func (l *latency) wait() time.Duration {
	if l.jitter == 0 {
		return l.delay
	}
	l.mu.Lock()
	j := time.Duration(l.rng.Int64N(int64(2*l.jitter)+1)) - l.jitter
	l.mu.Unlock()
	return l.delay + j
}

// Inject waits, then lets the request go on; a client that gives up while
// waiting ends the wait at once.
func (l *latency) Inject(w http.ResponseWriter, r *http.Request) bool {
	t := time.NewTimer(l.wait())
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
	return false
}

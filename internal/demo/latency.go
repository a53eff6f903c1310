package demo

import (
	"context"
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// z99 is the 99th percentile of the standard normal distribution.
const z99 = 2.3263478740408408

// defaultSeed is used when Options.Seed is 0 so runs are reproducible.
const defaultSeed int64 = 0x5eed_de30

// pcgStream is the fixed second PCG word; only the seed varies between servers.
const pcgStream uint64 = 0x9e3779b97f4a7c15

// minDelay is the floor applied to every sampled latency.
const minDelay = 100 * time.Microsecond

// latencyProfile describes a log-normal latency distribution by its median
// and 99th percentile. Samples are clamped to [minDelay, 4×p99] so the tail is
// bounded well below the server's write timeout.
type latencyProfile struct {
	median time.Duration
	p99    time.Duration
}

var (
	latOrdersList  = latencyProfile{median: 8 * time.Millisecond, p99: 25 * time.Millisecond}
	latOrderGet    = latencyProfile{median: 5 * time.Millisecond, p99: 15 * time.Millisecond}
	latOrderCreate = latencyProfile{median: 12 * time.Millisecond, p99: 40 * time.Millisecond}
	latUserGet     = latencyProfile{median: 3 * time.Millisecond, p99: 10 * time.Millisecond}
	latSlow        = latencyProfile{median: 120 * time.Millisecond, p99: 400 * time.Millisecond}
)

// sigma is the standard deviation of the underlying normal distribution.
func (p latencyProfile) sigma() float64 {
	if p.median <= 0 || p.p99 <= p.median {
		return 0
	}
	return math.Log(float64(p.p99)/float64(p.median)) / z99
}

// max is the upper clamp for samples.
func (p latencyProfile) max() time.Duration { return 4 * p.p99 }

// at maps a standard-normal draw z to a latency: median·exp(σ·z), clamped.
// It is pure, so the distribution can be tested without randomness or time.
func (p latencyProfile) at(z float64) time.Duration {
	// Clamp in float space: exp can overflow int64 nanoseconds.
	d := float64(p.median) * math.Exp(p.sigma()*z)
	if hi := float64(p.max()); d > hi {
		d = hi
	}
	if d < float64(minDelay) || math.IsNaN(d) {
		d = float64(minDelay)
	}
	return time.Duration(d)
}

// sampler draws latencies from a seeded PRNG. It is safe for concurrent use;
// for a given seed the sequence of draws is deterministic (the assignment of
// draws to concurrent requests depends on arrival order).
type sampler struct {
	mu  sync.Mutex
	rng *rand.Rand
}

func newSampler(seed int64) *sampler {
	if seed == 0 {
		seed = defaultSeed
	}
	return &sampler{rng: rand.New(rand.NewPCG(uint64(seed), pcgStream))}
}

func (s *sampler) normal() float64 {
	s.mu.Lock()
	z := s.rng.NormFloat64()
	s.mu.Unlock()
	return z
}

// sample draws one latency from p.
func (s *sampler) sample(p latencyProfile) time.Duration { return p.at(s.normal()) }

// wait blocks for d or until ctx is done, whichever comes first. It reports
// whether the full delay elapsed (false means the request was cancelled).
func wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

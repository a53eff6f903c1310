package inject

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/resctl/resctl/quantity"
)

// Slicer defaults: tiny packets, a millisecond apart.
const (
	DefaultSliceSize      = quantity.Bytes(64)
	DefaultSliceVariation = quantity.Bytes(32)
	DefaultSliceDelay     = time.Millisecond
)

// SlicerSpec cuts the bytes moving in its direction into small slices of
// AverageSize ± SizeVariation bytes with Delay between them, so a reader
// that assumes one read returns one message breaks.
type SlicerSpec struct {
	ConnMatch `yaml:",inline"`
	// AverageSize is the mean size of a slice.
	AverageSize quantity.Bytes `yaml:"average_size"`
	// SizeVariation varies each slice's size by up to ± this much.
	SizeVariation quantity.Bytes `yaml:"size_variation"`
	// Delay is the pause between two slices.
	Delay time.Duration `yaml:"delay"`
}

var _ ConnSpec = (*SlicerSpec)(nil)

// Kind implements Spec.
func (*SlicerSpec) Kind() string { return "slicer" }

// Check implements Spec.
func (s *SlicerSpec) Check(problem func(field, msg string)) {
	s.ConnMatch.check(problem)
	if s.AverageSize <= 0 {
		problem("average_size", "must be above zero bytes, e.g. 64")
	}
	if s.SizeVariation < 0 || (s.SizeVariation >= s.AverageSize && s.AverageSize > 0) {
		problem("size_variation", "must be at least zero and below average_size")
	}
	if s.Delay < 0 {
		problem("delay", "must not be negative")
	}
}

// BuildConn implements ConnSpec.
func (s *SlicerSpec) BuildConn() ConnFault {
	return &slicer{m: s.ConnMatch, avg: int(s.AverageSize), vary: int(s.SizeVariation), delay: s.Delay, rng: rand.New(rand.NewPCG(0, 0))}
}

type slicer struct {
	m         ConnMatch
	avg, vary int
	delay     time.Duration

	mu  sync.Mutex
	rng *rand.Rand
}

var _ seeded = (*slicer)(nil)

func (s *slicer) seed(r *rand.Rand) { s.rng = r }

func (s *slicer) Stream(dir Direction, _ Conn) Stream {
	if !s.m.Acts(dir) {
		return nil
	}
	return s
}

func (s *slicer) size() int {
	if s.vary == 0 {
		return s.avg
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.avg - s.vary + s.rng.IntN(2*s.vary+1)
}

func (s *slicer) Pass(ctx context.Context, p []byte, next func([]byte) error) error {
	for len(p) > 0 {
		n := min(len(p), s.size())
		if err := next(p[:n]); err != nil {
			return err
		}
		p = p[n:]
		if len(p) > 0 && !sleep(ctx, s.delay) {
			return ctx.Err()
		}
	}
	return nil
}

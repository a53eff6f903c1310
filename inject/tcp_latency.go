package inject

import (
	"context"
	"math/rand/v2"
	"time"
)

// TCPLatencySpec delays every chunk of bytes moving in its direction on the
// connections it is drawn for, by Delay ± Jitter or a distribution, as a
// slow network path would.
type TCPLatencySpec struct {
	ConnMatch `yaml:",inline"`
	// Delay is how long each chunk of bytes is held (the mean, or the
	// minimum for pareto).
	Delay time.Duration `yaml:"delay"`
	// Jitter varies the delay: ± uniformly, or the standard deviation for
	// normal.
	Jitter time.Duration `yaml:"jitter"`
	// Distribution is uniform (the default), normal or pareto.
	Distribution string `yaml:"distribution"`
	// Shape is the Pareto index; zero means DefaultParetoShape.
	Shape float64 `yaml:"shape"`
	// Max caps every draw; zero means ten times the delay for pareto and no
	// cap otherwise.
	Max time.Duration `yaml:"max"`
}

var _ ConnSpec = (*TCPLatencySpec)(nil)

// Kind implements Spec.
func (*TCPLatencySpec) Kind() string { return "latency" }

// Check implements Spec.
func (s *TCPLatencySpec) Check(problem func(field, msg string)) {
	s.ConnMatch.check(problem)
	checkDelay(s.Delay, s.Jitter, s.Distribution, s.Shape, s.Max, problem)
}

// BuildConn implements ConnSpec.
func (s *TCPLatencySpec) BuildConn() ConnFault {
	return &tcpLatency{m: s.ConnMatch, delays: newDelays(s.Delay, s.Jitter, s.Distribution, s.Shape, s.Max)}
}

type tcpLatency struct {
	m      ConnMatch
	delays *delays
}

var _ seeded = (*tcpLatency)(nil)

func (l *tcpLatency) seed(r *rand.Rand) { l.delays.seed(r) }

func (l *tcpLatency) Stream(dir Direction, _ Conn) Stream {
	if !l.m.Acts(dir) {
		return nil
	}
	return l
}

func (l *tcpLatency) Pass(ctx context.Context, p []byte, next func([]byte) error) error {
	if !sleep(ctx, l.delays.next()) {
		return ctx.Err()
	}
	return next(p)
}

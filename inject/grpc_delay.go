package inject

import "time"

// GRPCDelaySpec holds matching gRPC calls before they are forwarded: by
// Delay, plus or minus a uniformly drawn Jitter, or drawn from a
// distribution: the HTTP latency fault with gRPC's selectors. The wait
// ends with the call's context; on the harness proxy, which bounds each
// call by its grpc-timeout, a call whose deadline passes while it waits
// is not forwarded and its client sees DEADLINE_EXCEEDED, as from a slow
// server.
type GRPCDelaySpec struct {
	GRPCMatch `yaml:",inline"`
	// Delay is how long each call is held (the mean, or the minimum for
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

var _ HTTPSpec = (*GRPCDelaySpec)(nil)

// Kind implements Spec.
func (*GRPCDelaySpec) Kind() string { return "delay" }

// Check implements Spec.
func (s *GRPCDelaySpec) Check(problem func(field, msg string)) {
	s.GRPCMatch.check(problem)
	checkDelay(s.Delay, s.Jitter, s.Distribution, s.Shape, s.Max, problem)
}

// Build implements HTTPSpec.
func (s *GRPCDelaySpec) Build() HTTPFault {
	return &latency{delays: newDelays(s.Delay, s.Jitter, s.Distribution, s.Shape, s.Max)}
}

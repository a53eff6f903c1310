package agent

import (
	"context"
	"fmt"
)

// Goroutine modes.
const (
	// ModePark parks the goroutines: memory and scheduler bookkeeping,
	// as leaked goroutines blocked on a channel cost.
	ModePark = "park"
	// ModeSpin keeps them runnable: scheduler contention.
	ModeSpin = "spin"
)

// GoroutinesSpec floods the service with Count goroutines, the signature
// of a leak: go_goroutines climbs, stacks grow, the scheduler works.
type GoroutinesSpec struct {
	// Count is how many goroutines are started.
	Count int `yaml:"count"`
	// Mode is park (they block: a leak) or spin (they stay runnable:
	// scheduler contention).
	Mode string `yaml:"mode"`
}

// Kind implements Spec.
func (*GoroutinesSpec) Kind() string { return "goroutines" }

// Check implements Spec.
func (s *GoroutinesSpec) Check(o Options, problem func(field, msg string)) {
	if s.Count <= 0 || s.Count > o.MaxGoroutines {
		problem("count", fmt.Sprintf("must be from 1 to this agent's cap of %d", o.MaxGoroutines))
	}
	if s.Mode != ModePark && s.Mode != ModeSpin {
		problem("mode", "must be park or spin")
	}
}

func (s *GoroutinesSpec) start() func() {
	if s.Mode == ModeSpin {
		return workers(s.Count, func(ctx context.Context) {
			for ctx.Err() == nil {
				spinFor(timeSlice)
			}
		})
	}
	return workers(s.Count, func(ctx context.Context) { <-ctx.Done() })
}

package agent

import (
	"context"
	"fmt"
	"runtime"
	"time"
)

// timeSlice is the period of CPU duty cycles.
const timeSlice = 10 * time.Millisecond

// CPUSpec burns CPU in Workers goroutines, each busy Percent of the time:
// the service competes for its own cores, as with a noisy neighbour or a
// hot loop.
type CPUSpec struct {
	// Workers is how many goroutines burn CPU.
	Workers int `yaml:"workers"`
	// Percent is the share of the time each worker is busy.
	Percent float64 `yaml:"percent"`
}

// Kind implements Spec.
func (*CPUSpec) Kind() string { return "cpu" }

// Check implements Spec.
func (s *CPUSpec) Check(_ Options, problem func(field, msg string)) {
	if n := 4 * runtime.NumCPU(); s.Workers <= 0 || s.Workers > n {
		problem("workers", fmt.Sprintf("must be from 1 to %d (four per core)", n))
	}
	if !(s.Percent > 0 && s.Percent <= 100) {
		problem("percent", "must be above 0 and at most 100")
	}
}

func (s *CPUSpec) start() func() {
	busy := time.Duration(float64(timeSlice) * s.Percent / 100)
	return workers(s.Workers, func(ctx context.Context) {
		t := time.NewTicker(timeSlice)
		defer t.Stop()
		for {
			spinFor(busy)
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
		}
	})
}

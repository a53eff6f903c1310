package agent

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/resctl/resctl/quantity"
)

// Memory modes.
const (
	// ModeBallast holds Bytes of live heap: the service runs closer to
	// its memory limit and the GC works harder to stay under GOMEMLIMIT.
	ModeBallast = "ballast"
	// ModeChurn allocates Bytes of garbage per second: allocation
	// pressure and GC cycles without growth.
	ModeChurn = "churn"
)

// churnChunk is the size of each garbage allocation.
const churnChunk = 64 << 10

// MemorySpec puts the service's heap under pressure.
type MemorySpec struct {
	// Bytes is the ballast's size, or the churn per second.
	Bytes quantity.Bytes `yaml:"bytes"`
	// Mode is ballast (Bytes held live) or churn (Bytes of garbage a second:
	// GC pressure).
	Mode string `yaml:"mode"`
}

// Kind implements Spec.
func (*MemorySpec) Kind() string { return "memory" }

// Check implements Spec.
func (s *MemorySpec) Check(o Options, problem func(field, msg string)) {
	if s.Bytes <= 0 || int64(s.Bytes) > o.MaxBytes {
		problem("bytes", fmt.Sprintf("must be above zero and at most this agent's cap of %s", quantity.Bytes(o.MaxBytes)))
	}
	if s.Mode != ModeBallast && s.Mode != ModeChurn {
		problem("mode", "must be ballast or churn")
	}
}

func (s *MemorySpec) start() func() {
	if s.Mode == ModeChurn {
		perTick := max(int(s.Bytes)/10, 1)
		return workers(1, func(ctx context.Context) {
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for {
				for n := 0; n < perTick; n += churnChunk {
					garbage := make([]byte, min(churnChunk, perTick-n))
					runtime.KeepAlive(garbage) // allocated, then dropped

				}
				select {
				case <-t.C:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	ballast := make([]byte, s.Bytes)
	for i := 0; i < len(ballast); i += 4096 {
		ballast[i] = 1 // touch every page, so it counts in RSS too
	}
	return func() { ballast = nil }
}

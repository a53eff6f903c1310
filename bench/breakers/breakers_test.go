package breakers

import (
	"context"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/sony/gobreaker/v2"

	"github.com/resctl/resctl/guard"
)

// Every breaker is closed and stays closed: each iteration is one admitted
// call, asked for and then recorded as a success. Each benchmark has a
// single-threaded and a parallel form; run with -cpu 1,2.

func run(b *testing.B, parallel bool, call func()) {
	b.ReportAllocs()
	if !parallel {
		for b.Loop() {
			call()
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			call()
		}
	})
}

var modes = []struct {
	name     string
	parallel bool
}{{"single", false}, {"parallel", true}}

// BenchmarkBreaker_Closed is resctl's guard.Breaker with its defaults (a
// window of the last 100 calls): Acquire + Release.
func BenchmarkBreaker_Closed(b *testing.B) {
	ctx := context.Background()
	req := &guard.Request{Route: "/api/orders"}
	out := guard.Outcome{Duration: time.Millisecond, Status: 200}
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			br, err := guard.NewBreaker("bench", guard.DefaultBreakerConfig(), guard.Options{})
			if err != nil {
				b.Fatal(err)
			}
			run(b, m.parallel, func() {
				p, err := br.Acquire(ctx, req)
				if err != nil {
					b.Fatal(err)
				}
				br.Release(p, out)
			})
		})
	}
}

// BenchmarkBreaker_ClosedTimeWindow is the same with a ten-second time
// window, which reads the clock on every Release.
func BenchmarkBreaker_ClosedTimeWindow(b *testing.B) {
	ctx := context.Background()
	req := &guard.Request{Route: "/api/orders"}
	out := guard.Outcome{Duration: time.Millisecond, Status: 200}
	cfg := guard.DefaultBreakerConfig()
	cfg.Window = guard.Window{Duration: 10 * time.Second}
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			br, err := guard.NewBreaker("bench", cfg, guard.Options{})
			if err != nil {
				b.Fatal(err)
			}
			run(b, m.parallel, func() {
				p, err := br.Acquire(ctx, req)
				if err != nil {
					b.Fatal(err)
				}
				br.Release(p, out)
			})
		})
	}
}

// BenchmarkGobreaker_TwoStep is sony/gobreaker's two-step breaker: Allow
// returns a done callback.
func BenchmarkGobreaker_TwoStep(b *testing.B) {
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			cb := gobreaker.NewTwoStepCircuitBreaker[any](gobreaker.Settings{Name: "bench"})
			run(b, m.parallel, func() {
				done, err := cb.Allow()
				if err != nil {
					b.Fatal(err)
				}
				done(nil)
			})
		})
	}
}

// BenchmarkFailsafe_Permit is failsafe-go's circuit breaker through its
// permit API: TryAcquirePermit + RecordSuccess.
func BenchmarkFailsafe_Permit(b *testing.B) {
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			cb := circuitbreaker.NewBuilder[any]().
				WithFailureThresholdRatio(50, 100).
				Build()
			run(b, m.parallel, func() {
				if !cb.TryAcquirePermit() {
					b.Fatal("failsafe breaker refused a permit")
				}
				cb.RecordSuccess()
			})
		})
	}
}

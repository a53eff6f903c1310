package breakers

import (
	"context"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/adaptivelimiter"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/ratelimiter"
	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"

	"github.com/resctl/resctl/guard"
)

// A chain of a breaker, an adaptive concurrency limit and a rate limit,
// each admitting every call: what composing them costs per call when none
// of them fires. Run with -cpu 1,2.

// BenchmarkChain_Resctl is guard.Chain.Do over a breaker (defaults), a
// gradient adaptive limit (its limit fixed at 1,000 so that it never
// limits) and a token bucket at 10^12 calls/s, the chain timing each call.
func BenchmarkChain_Resctl(b *testing.B) {
	ctx := context.Background()
	req := &guard.Request{Route: "/api/orders"}
	call := func(context.Context) guard.Outcome { return guard.Outcome{Status: 200} }
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			br, err := guard.NewBreaker("b", guard.DefaultBreakerConfig(), guard.Options{})
			if err != nil {
				b.Fatal(err)
			}
			al := guard.DefaultAdaptiveLimitConfig()
			al.InitialLimit, al.MaxLimit = 1000, 1000
			lim, err := guard.NewAdaptiveLimit("l", al, guard.Options{})
			if err != nil {
				b.Fatal(err)
			}
			rl := guard.DefaultRateLimitConfig()
			rl.Rate = 1e12
			rt, err := guard.NewRateLimit("r", rl, guard.Options{})
			if err != nil {
				b.Fatal(err)
			}
			c := guard.NewChain(br, lim, rt)
			run(b, m.parallel, func() {
				if err := c.Do(ctx, req, call); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// BenchmarkChain_Failsafe is failsafe-go's executor over its circuit
// breaker (defaults), adaptive limiter (limits 1..1,000, starting at
// 1,000) and a smooth rate limiter of one call a nanosecond.
func BenchmarkChain_Failsafe(b *testing.B) {
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			ex := failsafe.With[any](
				circuitbreaker.NewWithDefaults[any](),
				adaptivelimiter.NewBuilder[any]().WithLimits(1, 1000, 1000).Build(),
				ratelimiter.NewSmoothWithMaxRate[any](time.Nanosecond),
			)
			run(b, m.parallel, func() {
				if err := ex.Run(func() error { return nil }); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// BenchmarkChain_Gobreaker is gobreaker's two-step breaker (defaults) and
// golang.org/x/time/rate's limiter at 10^12 calls/s. Neither library has
// an adaptive concurrency limit, so this is one policy short of the
// others: a floor for what composing them costs.
func BenchmarkChain_Gobreaker(b *testing.B) {
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			cb := gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{Name: "bench"})
			lim := rate.NewLimiter(rate.Limit(1e12), 1<<20)
			run(b, m.parallel, func() {
				done, err := cb.Allow()
				if err != nil {
					b.Fatal(err)
				}
				if !lim.Allow() {
					b.Fatal("rate limited")
				}
				done(nil)
			})
		})
	}
}

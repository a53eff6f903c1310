package guard_test

import (
	"context"
	"testing"
	"time"

	"github.com/resctl/resctl/guard"
)

func benchBreaker(b *testing.B) *guard.Breaker {
	br, err := guard.NewBreaker("bench", guard.DefaultBreakerConfig(), guard.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return br
}

var okOutcome = guard.Outcome{Duration: time.Millisecond, Status: 200}

// BenchmarkBreaker_Closed is the per-call overhead of an admitted call
// through a closed breaker: Acquire and Release.
func BenchmarkBreaker_Closed(b *testing.B) {
	ctx := context.Background()
	req := &guard.Request{Route: "/api/orders"}
	b.Run("single", func(b *testing.B) {
		br := benchBreaker(b)
		b.ReportAllocs()
		for b.Loop() {
			p, err := br.Acquire(ctx, req)
			if err != nil {
				b.Fatal(err)
			}
			br.Release(p, okOutcome)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		br := benchBreaker(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				p, err := br.Acquire(ctx, req)
				if err != nil {
					b.Fatal(err)
				}
				br.Release(p, okOutcome)
			}
		})
	})
}

// BenchmarkChain_BreakerLimiterRate is an admitted call through a chain of
// a breaker, an adaptive limiter and a token bucket, timed by the chain.
func BenchmarkChain_BreakerLimiterRate(b *testing.B) {
	ctx := context.Background()
	req := &guard.Request{Route: "/api/orders"}
	call := func(context.Context) guard.Outcome { return guard.Outcome{Status: 200} }
	newChain := func(b *testing.B) *guard.Chain {
		br := benchBreaker(b)
		al := guard.DefaultAdaptiveLimitConfig()
		al.InitialLimit, al.MaxLimit = 1000, 1000
		lim, err := guard.NewAdaptiveLimit("limit", al, guard.Options{})
		if err != nil {
			b.Fatal(err)
		}
		rl := guard.DefaultRateLimitConfig()
		rl.Rate = 1e12
		rate, err := guard.NewRateLimit("rate", rl, guard.Options{})
		if err != nil {
			b.Fatal(err)
		}
		return guard.NewChain(br, lim, rate)
	}
	b.Run("single", func(b *testing.B) {
		c := newChain(b)
		b.ReportAllocs()
		for b.Loop() {
			if err := c.Do(ctx, req, call); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		c := newChain(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := c.Do(ctx, req, call); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

package guard_test

import (
	"context"
	"net/http"
	"net/http/httptest"
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

// BenchmarkWrappers_FirstAttempt is what the retry, timeout and hedge
// wrappers add to an admitted request that succeeds on its first attempt,
// so that no retry or hedge fires: the handler is trivial and the
// recorder reused, so what is measured is the wrappers.
func BenchmarkWrappers_FirstAttempt(b *testing.B) {
	benchWrappers(b, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
}

// BenchmarkWrappers_Watched is BenchmarkWrappers_FirstAttempt with a
// handler that derives a context from the request's and watches it, as
// http.Transport does for every upstream call (the harness proxy's case):
// the wrappers' contexts must then watch their deadlines and parents.
func BenchmarkWrappers_Watched(b *testing.B) {
	benchWrappers(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithCancel(r.Context())
		select {
		case <-ctx.Done():
		default:
		}
		cancel()
		w.WriteHeader(http.StatusOK)
	}))
}

func benchWrappers(b *testing.B, handler http.Handler) {
	retry, _ := guard.NewRetry("r", guard.DefaultRetryConfig(), guard.Options{})
	tc := guard.DefaultTimeoutConfig()
	timeout, _ := guard.NewTimeout("t", tc, guard.Options{})
	hc := guard.DefaultHedgeConfig()
	hc.Delay, hc.Quantile = time.Second, 0
	hedge, _ := guard.NewHedge("h", hc, guard.Options{})
	for _, bc := range []struct {
		name     string
		policies []guard.Policy
	}{
		{"none", nil},
		{"retry", []guard.Policy{retry}},
		{"timeout", []guard.Policy{timeout}},
		{"hedge", []guard.Policy{hedge}},
		{"retry+timeout+hedge", []guard.Policy{retry, timeout, hedge}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := handler
			if len(bc.policies) > 0 {
				h = guard.NewChain(bc.policies...).Middleware(handler)
			}
			req := httptest.NewRequest("GET", "/api/orders", nil)
			req.Header.Set(guard.RequestIDHeader, "client-id")
			w := &nopWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, req)
			}
		})
	}
}

type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) WriteHeader(int)             {}
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }

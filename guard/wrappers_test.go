package guard_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resctl/resctl/guard"
)

// slow answers after its delay, or when the request is cancelled, as the
// harness proxy does: a cancelled upstream call is a 502 marked as the
// proxy's own.
type slow struct {
	delay  time.Duration
	header atomic.Value // the deadline header it saw
}

func (s *slow) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.header.Store(r.Header.Get(guard.DeadlineHeader))
	select {
	case <-time.After(s.delay):
		io.WriteString(w, "slow answer")
	case <-r.Context().Done():
		w.Header().Set(guard.UpstreamErrorHeader, "upstream")
		w.WriteHeader(http.StatusBadGateway)
	}
}

func TestTimeout(t *testing.T) {
	to, err := guard.NewTimeout("orders", guard.TimeoutConfig{After: 20 * time.Millisecond, Header: guard.DeadlineHeader}, guard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("a call within the deadline passes, told the time it has", func(t *testing.T) {
		s := &slow{}
		rec := serve(guard.NewChain(to).Middleware(s), "GET", "")
		if rec.Code != 200 || rec.Body.String() != "slow answer" {
			t.Errorf("status %d body %q", rec.Code, rec.Body)
		}
		if v, err := strconv.Atoi(s.header.Load().(string)); err != nil || v < 1 || v > 20 {
			t.Errorf("deadline header %q, want 1..20 (ms)", s.header.Load())
		}
	})
	t.Run("a call past the deadline is answered 504 and counted as a timeout", func(t *testing.T) {
		br, _ := guard.NewBreaker("b", guard.DefaultBreakerConfig(), guard.Options{})
		rec := serve(guard.NewChain(br, to).Middleware(&slow{delay: time.Minute}), "GET", "")
		if rec.Code != http.StatusGatewayTimeout || rec.Header().Get(guard.TimeoutHeader) != "orders" {
			t.Errorf("status %d, header %v; want 504 with %s", rec.Code, rec.Header(), guard.TimeoutHeader)
		}
		if rec.Header().Get(guard.UpstreamErrorHeader) != "" {
			t.Errorf("the proxy's 502 leaked through: %v", rec.Header())
		}
	})
	t.Run("a request whose deadline passed is not sent", func(t *testing.T) {
		var called atomic.Bool
		h := guard.NewChain(to).Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called.Store(true) }))
		ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		defer cancel()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil).WithContext(ctx))
		if called.Load() || rec.Code != http.StatusGatewayTimeout {
			t.Errorf("sent: %v, status %d; want not sent, 504", called.Load(), rec.Code)
		}
	})
	t.Run("gRPC hears grpc-timeout and answers DEADLINE_EXCEEDED", func(t *testing.T) {
		var seen atomic.Value
		h := guard.NewChain(to).Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen.Store(r.Header.Get("Grpc-Timeout"))
			<-r.Context().Done()
			w.Header().Set(guard.UpstreamErrorHeader, "upstream")
			w.WriteHeader(502)
		}))
		req := httptest.NewRequest("POST", "/pkg.Svc/Get", nil)
		req.Header.Set("Content-Type", "application/grpc")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if v, _ := seen.Load().(string); !strings.HasSuffix(v, "m") {
			t.Errorf("grpc-timeout %q, want milliseconds", v)
		}
		if rec.Header().Get("Grpc-Status") != "4" {
			t.Errorf("grpc-status %q, want 4 (DEADLINE_EXCEEDED)", rec.Header().Get("Grpc-Status"))
		}
	})
	t.Run("per attempt, inside a retry", func(t *testing.T) {
		var calls atomic.Int32
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if calls.Add(1) == 1 {
				(&slow{delay: time.Minute}).ServeHTTP(w, r)
				return
			}
			io.WriteString(w, "fast")
		})
		r := newRetry(t, nil)
		rec := serve(guard.NewChain(r, to).Middleware(h), "GET", "")
		if rec.Code != 200 || calls.Load() != 2 {
			t.Errorf("status %d after %d calls; want the timed-out attempt retried", rec.Code, calls.Load())
		}
	})
}

func TestFallback(t *testing.T) {
	stub := filepath.Join(t.TempDir(), "stub.json")
	os.WriteFile(stub, []byte(`{"stub":true}`), 0o644)
	tests := []struct {
		name     string
		edit     func(*guard.FallbackConfig)
		statuses []int
		header   http.Header
		want     []string // "status kind body" per request
	}{
		{"static on failure", func(c *guard.FallbackConfig) { c.Body = `{"orders":[]}` }, []int{503}, nil,
			[]string{`200 static {"orders":[]}`}},
		{"successes pass", nil, []int{201}, nil, []string{"201  answer 201"}},
		{"4xx is the client's answer", nil, []int{404}, nil, []string{"404  answer 404"}},
		{"a rejection is answered", nil, []int{429}, http.Header{guard.GuardHeader: {"rl"}}, []string{"200 static "}},
		{"a stub file", func(c *guard.FallbackConfig) { c.File = stub }, []int{502}, nil, []string{`200 file {"stub":true}`}},
		{"the last good response, then the stub", func(c *guard.FallbackConfig) {
			c.Body = "stub"
			c.LastGood.Entries = 10
		}, []int{200, 503, 503}, nil, []string{"200  answer 200", "200 last_good answer 200", "200 last_good answer 200"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := guard.DefaultFallbackConfig()
			if tt.edit != nil {
				tt.edit(&c)
			}
			f, err := guard.NewFallback("orders", c, guard.Options{})
			if err != nil {
				t.Fatal(err)
			}
			h := guard.NewChain(f).Middleware(&script{statuses: tt.statuses, header: tt.header})
			for i, want := range tt.want {
				rec := serve(h, "GET", "")
				got := strings.Join([]string{itoa(rec.Code), rec.Header().Get(guard.FallbackHeader), rec.Body.String()}, " ")
				if got != want {
					t.Errorf("request %d: %q, want %q", i+1, got, want)
				}
			}
		})
	}
	t.Run("last good responses expire", func(t *testing.T) {
		clk := newFakeClock()
		c := guard.DefaultFallbackConfig()
		c.Body, c.LastGood.Entries, c.LastGood.MaxAge = "stub", 10, time.Second
		f, _ := guard.NewFallback("orders", c, guard.Options{Clock: clk})
		h := guard.NewChain(f).Middleware(&script{statuses: []int{200, 503}})
		serve(h, "GET", "")
		clk.Advance(2 * time.Second)
		if rec := serve(h, "GET", ""); rec.Header().Get(guard.FallbackHeader) != "static" {
			t.Errorf("fallback %q after max_age, want static", rec.Header().Get(guard.FallbackHeader))
		}
		if st := f.FallbackStats(); st.Stale != 1 || st.Static != 1 || st.Served != 1 {
			t.Errorf("stats %+v", st)
		}
	})
	t.Run("it answers the rejections of policies written before it", func(t *testing.T) {
		c := guard.DefaultFallbackConfig()
		f, _ := guard.NewFallback("orders", c, guard.Options{})
		bc := guard.DefaultBulkheadConfig()
		bc.MaxInFlight = 1
		bh, _ := guard.NewBulkhead("bh", bc, guard.Options{})
		pm, _ := bh.Acquire(context.Background(), &guard.Request{}) // the only slot
		defer bh.Release(pm, guard.Outcome{Status: 200})
		rec := serve(guard.NewChain(bh, f).Middleware(&script{statuses: []int{200}}), "GET", "")
		if rec.Header().Get(guard.FallbackHeader) != "static" {
			t.Errorf("status %d, headers %v: want the bulkhead's rejection answered by the fallback", rec.Code, rec.Header())
		}
	})
	t.Run("a stub file that does not exist", func(t *testing.T) {
		c := guard.DefaultFallbackConfig()
		c.File = filepath.Join(t.TempDir(), "missing.json")
		if ps := problems(&c); len(ps) != 1 || !strings.HasPrefix(ps[0], "file: ") {
			t.Errorf("problems %q", ps)
		}
	})
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestHedge(t *testing.T) {
	// The first call is slow, every later one fast: a hedge after 10ms
	// answers with the second attempt and cancels the first.
	var calls atomic.Int32
	var cancelled atomic.Bool
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			select {
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
				cancelled.Store(true)
				w.WriteHeader(499)
				return
			}
		}
		io.WriteString(w, "attempt "+r.Header.Get(guard.AttemptHeader))
	})
	c := guard.DefaultHedgeConfig()
	c.Delay, c.Quantile = 10*time.Millisecond, 0
	hd, err := guard.NewHedge("orders", c, guard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rec := serve(guard.NewChain(hd).Middleware(h), "GET", "")
	if rec.Code != 200 || rec.Body.String() != "attempt 2" {
		t.Errorf("status %d body %q; want the hedge's answer", rec.Code, rec.Body)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("took %v: the slow attempt was waited for", d)
	}
	if !cancelled.Load() {
		t.Error("the losing attempt was not cancelled")
	}
	if st := hd.HedgeStats(); st.Sent != 1 || st.Won != 1 {
		t.Errorf("stats %+v, want one sent and won", st)
	}
	t.Run("a fast call sends no hedge", func(t *testing.T) {
		rec := serve(guard.NewChain(hd).Middleware(h), "GET", "")
		if rec.Body.String() != "attempt 1" || hd.HedgeStats().Sent != 1 {
			t.Errorf("body %q, stats %+v", rec.Body, hd.HedgeStats())
		}
	})
	t.Run("a delay of zero with no quantile", func(t *testing.T) {
		c := guard.DefaultHedgeConfig()
		c.Delay, c.Quantile = 0, 0
		if ps := problems(&c); len(ps) != 1 || !strings.HasPrefix(ps[0], "delay: ") {
			t.Errorf("problems %q", ps)
		}
	})
	t.Run("the delay follows the observed quantile", func(t *testing.T) {
		clk := newFakeClock()
		c := guard.DefaultHedgeConfig()
		c.Quantile, c.MinSamples = 90, 10
		hd, _ := guard.NewHedge("q", c, guard.Options{Clock: clk})
		step := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { clk.Advance(time.Millisecond) })
		mw := guard.NewChain(hd).Middleware(step)
		for range 100 {
			serve(mw, "GET", "")
		}
		if d := hd.Delay(); d != 0 {
			t.Fatalf("delay %v before an interval passed, want 0 (no hedging yet)", d)
		}
		clk.Advance(time.Second)
		if d := hd.Delay(); d < time.Millisecond || d > 1200*time.Microsecond {
			t.Errorf("delay %v, want the p90 of 1ms calls (within the histogram's 12.5%%)", d)
		}
	})
}

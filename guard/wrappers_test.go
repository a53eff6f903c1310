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
	"sync"
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
		// A minute's deadline: the 20 ms of the others would also have to
		// cover the call, which a busy machine may take longer over. The
		// header is read before the call: it has lost at most the time
		// the chain took to send it.
		to, err := guard.NewTimeout("orders", guard.TimeoutConfig{After: time.Minute, Header: guard.DeadlineHeader}, guard.Options{})
		if err != nil {
			t.Fatal(err)
		}
		s := &slow{}
		start := time.Now()
		rec := serve(guard.NewChain(to).Middleware(s), "GET", "")
		took := time.Since(start)
		if rec.Code != 200 || rec.Body.String() != "slow answer" {
			t.Errorf("status %d body %q", rec.Code, rec.Body)
		}
		low := (time.Minute - took).Milliseconds()
		if v, err := strconv.Atoi(s.header.Load().(string)); err != nil || int64(v) < low || int64(v) > time.Minute.Milliseconds() {
			t.Errorf("deadline header %q, want %d..%d (ms)", s.header.Load(), low, time.Minute.Milliseconds())
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
	// The first attempt of the first call is slow: it moves the hedge's
	// clock past the delay and waits to be cancelled. A hedge after 10ms
	// answers with the second attempt and cancels the first. On the fake
	// clock the hedge goes only when a test moves it, so a fast call
	// sends none however long a busy machine takes over it.
	clk := newFakeClock()
	var calls atomic.Int32
	var cancelled atomic.Bool
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			if a := r.Header.Get(guard.AttemptHeader); a != "1" {
				t.Errorf("attempt %q arrived first, want 1", a)
			}
			clk.Advance(10 * time.Millisecond) // the hedge goes
			select {
			case <-time.After(time.Minute): // only a hedge that never cancels
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
	hd, err := guard.NewHedge("orders", c, guard.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	rec := serve(guard.NewChain(hd).Middleware(h), "GET", "")
	if rec.Code != 200 || rec.Body.String() != "attempt 2" {
		t.Errorf("status %d body %q; want the hedge's answer", rec.Code, rec.Body)
	}
	if !cancelled.Load() {
		t.Error("the losing attempt was not cancelled: the slow attempt was waited for")
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

// TestWrappers_RetainedContext: code that keeps an attempt's request or
// context after the attempt returns (a goroutine its handler started) goes
// on seeing that attempt's deadline, ended, whatever requests follow: the
// wrappers pool their own state, never what they hand on.
func TestWrappers_RetainedContext(t *testing.T) {
	newTimeout := func() guard.Policy {
		to, err := guard.NewTimeout("t", guard.TimeoutConfig{After: time.Hour, Header: guard.DeadlineHeader}, guard.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return to
	}
	newHedge := func() guard.Policy {
		c := guard.DefaultHedgeConfig()
		c.Delay, c.Quantile = time.Hour, 0
		hd, err := guard.NewHedge("h", c, guard.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return hd
	}
	tests := []struct {
		name     string
		policies []guard.Policy
	}{
		{"timeout", []guard.Policy{newTimeout()}},
		{"hedge", []guard.Policy{newHedge()}},
		{"timeout lending its attempts to a hedge", []guard.Policy{newTimeout(), newHedge()}},
		{"retry, timeout, hedge", []guard.Policy{newRetry(t, nil), newTimeout(), newHedge()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			type kept struct {
				r        *http.Request
				ctx      context.Context
				deadline time.Time
			}
			var all []kept
			h := guard.NewChain(tt.policies...).Middleware(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
				dl, _ := r.Context().Deadline()
				all = append(all, kept{r, r.Context(), dl})
			}))
			for i := range 50 {
				// Every other request with a deadline of its own, so that a
				// recycled context would show another request's.
				ctx := context.Background()
				if i%2 == 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithDeadline(ctx, time.Now().Add(time.Duration(i+1)*time.Minute))
					defer cancel()
				}
				h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/api/orders", nil).WithContext(ctx))
			}
			seen := map[context.Context]bool{}
			for i, k := range all {
				if seen[k.ctx] {
					t.Fatalf("request %d: its context was another request's", i)
				}
				seen[k.ctx] = true
				if k.r.Context() != k.ctx {
					t.Errorf("request %d: the kept request's context changed", i)
				}
				if dl, _ := k.ctx.Deadline(); !dl.Equal(k.deadline) {
					t.Errorf("request %d: deadline %v after the attempt, %v during it", i, dl, k.deadline)
				}
				if k.ctx.Err() == nil {
					t.Errorf("request %d: context not ended after the attempt returned", i)
				}
				select {
				case <-k.ctx.Done():
				default:
					t.Errorf("request %d: Done open after the attempt returned", i)
				}
			}
		})
	}
}

// TestTimeout_Propagates: the time left, the timeout's own or a shorter
// one of the caller's, travels to the upstream in the configured header or
// in grpc-timeout.
func TestTimeout_Propagates(t *testing.T) {
	tests := []struct {
		name        string
		after       time.Duration
		parent      time.Duration // the caller's deadline; 0 for none
		contentType string
		header      string
		lo, hi      int64 // milliseconds
	}{
		{"its own", time.Second, 0, "", guard.DeadlineHeader, 1000, 1000},
		{"the caller's, shorter", time.Minute, 5 * time.Second, "", guard.DeadlineHeader, 4000, 5000},
		{"the timeout's, shorter than the caller's", time.Second, time.Minute, "", guard.DeadlineHeader, 900, 1000},
		{"a header of its own", time.Second, 0, "", "x-deadline-ms", 1000, 1000},
		{"gRPC", 2 * time.Second, 0, "application/grpc", "Grpc-Timeout", 2000, 2000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			to, err := guard.NewTimeout("t", guard.TimeoutConfig{After: tt.after, Header: tt.header}, guard.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var got string
			h := guard.NewChain(to).Middleware(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
				got = r.Header.Get(tt.header)
			}))
			for range 3 { // the value is kept and shared from the second request on
				ctx := context.Background()
				if tt.parent > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.parent)
					defer cancel()
				}
				req := httptest.NewRequest("POST", "/pkg.Svc/Get", nil).WithContext(ctx)
				if tt.contentType != "" {
					req.Header.Set("Content-Type", tt.contentType)
				}
				h.ServeHTTP(httptest.NewRecorder(), req)
				v := got
				if tt.contentType != "" {
					v = strings.TrimSuffix(v, "m")
				}
				if ms, err := strconv.ParseInt(v, 10, 64); err != nil || ms < tt.lo || ms > tt.hi {
					t.Errorf("%s: %q, want %d..%d ms", tt.header, got, tt.lo, tt.hi)
				}
			}
		})
	}
}

// TestTimeout_CallerHeader: an HTTP caller's own deadline in the
// timeout's header, when shorter than the policy's, is the one the
// upstream is told and the one the call is cut at; a longer or malformed
// one gives way to the policy's.
func TestTimeout_CallerHeader(t *testing.T) {
	tests := []struct {
		name    string
		after   time.Duration
		inbound string // the caller's header; "" for none
		want    time.Duration
	}{
		{"the caller's, shorter", time.Minute, "300", 300 * time.Millisecond},
		{"the policy's, shorter", time.Second, "60000", time.Second},
		{"none from the caller", time.Second, "", time.Second},
		{"a malformed one", time.Second, "soon", time.Second},
		{"a negative one", time.Second, "-5", time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			to, err := guard.NewTimeout("t", guard.TimeoutConfig{After: tt.after, Header: guard.DeadlineHeader}, guard.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var (
				sent       string
				deadline   time.Time
				hasDL      bool
				inUpstream time.Time
			)
			h := guard.NewChain(to).Middleware(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
				inUpstream = time.Now()
				sent = r.Header.Get(guard.DeadlineHeader)
				deadline, hasDL = r.Context().Deadline()
			}))
			req := httptest.NewRequest("GET", "/", nil)
			if tt.inbound != "" {
				req.Header.Set(guard.DeadlineHeader, tt.inbound)
			}
			before := time.Now()
			h.ServeHTTP(httptest.NewRecorder(), req)
			if want := strconv.FormatInt(tt.want.Milliseconds(), 10); sent != want {
				t.Errorf("%s sent upstream %q, want %q", guard.DeadlineHeader, sent, want)
			}
			// The policy read the clock between before and inUpstream.
			if !hasDL || deadline.Before(before.Add(tt.want)) || deadline.After(inUpstream.Add(tt.want)) {
				t.Errorf("the call's deadline is %v after it arrived (set: %v), want %v", deadline.Sub(before), hasDL, tt.want)
			}
		})
	}
}

// TestTimeout_CallerHeaderCutsTheCall: over loopback, a caller that
// sends a deadline of 50ms through a one-minute timeout is answered 504
// by the policy at its own deadline, not the policy's.
func TestTimeout_CallerHeaderCutsTheCall(t *testing.T) {
	to, err := guard.NewTimeout("t", guard.TimeoutConfig{After: time.Minute, Header: guard.DeadlineHeader}, guard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	up := &slow{delay: time.Minute}
	srv := httptest.NewServer(guard.NewChain(to).Middleware(up))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set(guard.DeadlineHeader, "50")
	client := &http.Client{Timeout: 10 * time.Second} // a hang guard: the policy's own deadline is a minute
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("the call was not cut at the caller's deadline: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusGatewayTimeout || res.Header.Get(guard.TimeoutHeader) != "t" {
		t.Errorf("status %d, %s %q; want 504 from the policy", res.StatusCode, guard.TimeoutHeader, res.Header.Get(guard.TimeoutHeader))
	}
	if v := up.header.Load(); v != "50" {
		t.Errorf("the upstream was told %q, want the caller's 50", v)
	}
}

// TestTimeout_PropagatesOnLaterAttempts: behind one timeout, a retry or a
// hedge sends its later attempts with the time left when each leaves,
// not the value the first carried.
func TestTimeout_PropagatesOnLaterAttempts(t *testing.T) {
	const wait = 150 * time.Millisecond
	retry := func(t *testing.T) guard.Policy {
		c := guard.DefaultRetryConfig()
		c.Backoff = guard.RetryBackoff{Base: wait, Max: wait, Multiplier: 1, Jitter: guard.JitterNone}
		r, err := guard.NewRetry("r", c, guard.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	hedge := func(t *testing.T) guard.Policy {
		c := guard.DefaultHedgeConfig()
		c.Delay, c.Quantile = wait, 0
		h, err := guard.NewHedge("h", c, guard.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	type key struct{}
	for _, tt := range []struct {
		name   string
		policy func(*testing.T) guard.Policy
		// apart puts the timeout in a chain of its own, a context value
		// between it and the policy, as the proxy's routes do.
		apart bool
	}{{"retry", retry, false}, {"hedge", hedge, false}, {"retry under a route", retry, true}, {"hedge under a route", hedge, true}} {
		t.Run(tt.name, func(t *testing.T) {
			to, err := guard.NewTimeout("t", guard.TimeoutConfig{After: 2 * time.Second, Header: guard.DeadlineHeader}, guard.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			sent := map[string]int64{}
			compose := func(next http.Handler) http.Handler { return guard.NewChain(to, tt.policy(t)).Middleware(next) }
			if tt.apart {
				compose = func(next http.Handler) http.Handler {
					inner := guard.NewChain(tt.policy(t)).Middleware(next)
					return guard.NewChain(to).Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						inner.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), key{}, "route")))
					}))
				}
			}
			h := compose(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ms, _ := strconv.ParseInt(r.Header.Get(guard.DeadlineHeader), 10, 64)
				n := r.Header.Get(guard.AttemptHeader)
				mu.Lock()
				sent[n] = ms
				mu.Unlock()
				if n == "1" {
					if strings.HasPrefix(tt.name, "hedge") {
						<-r.Context().Done() // slow: the hedge wins
					}
					w.WriteHeader(http.StatusServiceUnavailable)
					return
				}
			}))
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
			mu.Lock()
			defer mu.Unlock()
			first, second := sent["1"], sent["2"]
			if first < 1900 || second <= 0 || second > first-wait.Milliseconds()+20 {
				t.Errorf("%s: attempt 1 carried %d ms, attempt 2 %d ms; want 2 sent at least %v later with that much less", guard.DeadlineHeader, first, second, wait)
			}
		})
	}
}

// TestHedge_SecondAttempt: the second attempt is the request as the hedge
// was handed it, whatever the first attempt does to its own meanwhile —
// header, URL, path values — with the body replayed and its own number.
func TestHedge_SecondAttempt(t *testing.T) {
	for _, pathValue := range []string{"", "7"} {
		t.Run("path value "+strconv.Quote(pathValue), func(t *testing.T) {
			clk := newFakeClock()
			c := guard.DefaultHedgeConfig()
			c.Delay, c.Quantile = 10*time.Millisecond, 0
			hd, err := guard.NewHedge("orders", c, guard.Options{Clock: clk})
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			seen := map[string]string{}
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				n := r.Header.Get(guard.AttemptHeader)
				mu.Lock()
				seen[n] = strings.Join([]string{r.Header.Get("X-Foo"), r.URL.Path, r.PathValue("id"), string(b), r.Header.Get(guard.RequestIDHeader)}, " ")
				mu.Unlock()
				if n == "1" {
					r.Header.Set("X-Foo", "changed")
					r.URL.Path = "/changed"
					r.SetPathValue("id", "changed")
					clk.Advance(c.Delay) // the first is slow: the hedge goes
					<-r.Context().Done()
					w.WriteHeader(499)
					return
				}
				io.WriteString(w, "second")
			})
			req := httptest.NewRequest("PUT", "/api/orders", strings.NewReader("payload"))
			req.Header.Set("X-Foo", "sent")
			if pathValue != "" {
				req.SetPathValue("id", pathValue)
			}
			rec := httptest.NewRecorder()
			guard.NewChain(hd).Middleware(h).ServeHTTP(rec, req)
			if rec.Code != 200 || rec.Body.String() != "second" {
				t.Errorf("status %d body %q; want the second attempt's answer", rec.Code, rec.Body)
			}
			id := seen["1"][strings.LastIndex(seen["1"], " ")+1:]
			want := "sent /api/orders " + pathValue + " payload " + id
			if seen["1"] != want || seen["2"] != want {
				t.Errorf("attempts saw\n 1: %q\n 2: %q\nwant %q for both", seen["1"], seen["2"], want)
			}
		})
	}
}

// TestHedge_ExhaustedEndsAfterAQuietSecond: a hedge whose budget refused
// is exhausted, and passing again a quiet second later, with the next
// request, hedged or not.
func TestHedge_ExhaustedEndsAfterAQuietSecond(t *testing.T) {
	clk := newFakeClock()
	c := guard.DefaultHedgeConfig()
	c.Delay, c.Quantile = 10*time.Millisecond, 0
	c.Budget = guard.BudgetConfig{Ratio: 10, Window: time.Minute}
	hd, err := guard.NewHedge("orders", c, guard.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	h := guard.NewChain(hd).Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(guard.AttemptHeader) == "1" {
			clk.Advance(c.Delay) // slow enough to hedge, if the budget lets it
		}
		w.WriteHeader(200)
	}))
	for range 30 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	}
	if st := hd.HedgeStats(); st.BudgetExhausted == 0 || hd.State() != "exhausted" {
		t.Fatalf("budget refused %d hedges, state %s; want refusals and exhausted", st.BudgetExhausted, hd.State())
	}
	for _, step := range []struct {
		advance time.Duration
		want    string
	}{{500 * time.Millisecond, "exhausted"}, {600 * time.Millisecond, "passing"}} {
		clk.Advance(step.advance)
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/", nil)) // not hedged
		if hd.State() != step.want {
			t.Errorf("state %s %v later, want %s", hd.State(), step.advance, step.want)
		}
	}
}

// TestHedge_StateReuse: requests hedged and not in turn through one hedge,
// whose per-request state is pooled, each answer for themselves.
func TestHedge_StateReuse(t *testing.T) {
	clk := newFakeClock()
	c := guard.DefaultHedgeConfig()
	c.Delay, c.Quantile = 10*time.Millisecond, 0
	c.Budget.Ratio = 100
	hd, err := guard.NewHedge("orders", c, guard.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	h := guard.NewChain(hd).Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := r.Header.Get(guard.AttemptHeader)
		if n == "1" && r.URL.Query().Get("slow") != "" {
			clk.Advance(c.Delay)
			<-r.Context().Done()
			return
		}
		io.WriteString(w, n+" "+r.URL.RawQuery)
	}))
	for i := range 40 {
		q := "i=" + strconv.Itoa(i)
		want := "1 " + q
		if i%3 == 0 {
			q += "&slow=1"
			want = "2 " + q
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/orders?"+q, nil))
		if rec.Body.String() != want {
			t.Fatalf("request %d: %q, want %q", i, rec.Body, want)
		}
	}
	if st := hd.HedgeStats(); st.Sent != 14 || st.Won != 14 {
		t.Errorf("stats %+v, want 14 hedges sent and won", st)
	}
}

// TestTimeout_LendsToHedge: a timeout right before a hedge lends it its
// attempt. The hedge's two attempts share the timeout's deadline; the one
// that loses is cancelled, and the timeout still answers for the deadline.
func TestTimeout_LendsToHedge(t *testing.T) {
	t.Run("the second attempt wins", func(t *testing.T) {
		clk := newFakeClock()
		to, _ := guard.NewTimeout("t", guard.TimeoutConfig{After: time.Hour, Header: guard.DeadlineHeader}, guard.Options{})
		c := guard.DefaultHedgeConfig()
		c.Delay, c.Quantile = 10*time.Millisecond, 0
		hd, _ := guard.NewHedge("h", c, guard.Options{Clock: clk})
		var mu sync.Mutex
		deadlines := map[string]time.Time{}
		var cancelled error
		h := guard.NewChain(to, hd).Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n := r.Header.Get(guard.AttemptHeader)
			dl, _ := r.Context().Deadline()
			mu.Lock()
			deadlines[n] = dl
			mu.Unlock()
			if n == "1" {
				clk.Advance(c.Delay)
				<-r.Context().Done()
				mu.Lock()
				cancelled = r.Context().Err()
				mu.Unlock()
				w.WriteHeader(499)
				return
			}
			io.WriteString(w, "second "+r.Header.Get(guard.DeadlineHeader))
		}))
		rec := serve(h, "GET", "")
		if rec.Code != 200 || !strings.HasPrefix(rec.Body.String(), "second 3") {
			t.Errorf("status %d body %q; want the second attempt's, told of the deadline", rec.Code, rec.Body)
		}
		if cancelled != context.Canceled {
			t.Errorf("the first attempt ended with %v, want cancelled", cancelled)
		}
		if d1, d2 := deadlines["1"], deadlines["2"]; d1.IsZero() || !d1.Equal(d2) {
			t.Errorf("deadlines %v and %v; want the timeout's for both", d1, d2)
		}
	})
	t.Run("both attempts run out of time", func(t *testing.T) {
		clk := newFakeClock()
		to, _ := guard.NewTimeout("t", guard.TimeoutConfig{After: 30 * time.Millisecond, Header: guard.DeadlineHeader}, guard.Options{})
		c := guard.DefaultHedgeConfig()
		c.Delay, c.Quantile = 10*time.Millisecond, 0
		hd, _ := guard.NewHedge("h", c, guard.Options{Clock: clk})
		upstream := &slow{delay: time.Minute}
		h := guard.NewChain(to, hd).Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get(guard.AttemptHeader) == "1" {
				clk.Advance(c.Delay)
			}
			upstream.ServeHTTP(w, r)
		}))
		rec := serve(h, "GET", "")
		if rec.Code != http.StatusGatewayTimeout || rec.Header().Get(guard.TimeoutHeader) != "t" {
			t.Errorf("status %d, header %v; want the timeout's 504", rec.Code, rec.Header())
		}
		if st := hd.HedgeStats(); st.Sent != 1 {
			t.Errorf("stats %+v, want the hedge sent", st)
		}
	})
}

// TestHedge_FirstAttemptPanics: a first attempt that panics, as
// http.ReverseProxy does when the client has gone, leaves nothing behind:
// no hedge sent later, and one already sent cancelled and waited for.
func TestHedge_FirstAttemptPanics(t *testing.T) {
	newHedge := func(clk *fakeClock) *guard.Hedge {
		c := guard.DefaultHedgeConfig()
		c.Delay, c.Quantile = 10*time.Millisecond, 0
		hd, err := guard.NewHedge("orders", c, guard.Options{Clock: clk})
		if err != nil {
			t.Fatal(err)
		}
		return hd
	}
	serveRecovering := func(h http.Handler) (v any) {
		defer func() { v = recover() }()
		serve(h, "GET", "")
		return nil
	}
	t.Run("before the hedge", func(t *testing.T) {
		clk := newFakeClock()
		hd := newHedge(clk)
		h := guard.NewChain(hd).Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
			panic(http.ErrAbortHandler)
		}))
		if v := serveRecovering(h); v != http.ErrAbortHandler {
			t.Fatalf("recovered %v, want the handler's panic", v)
		}
		clk.Advance(time.Second)
		if st := hd.HedgeStats(); st.Sent != 0 {
			t.Errorf("stats %+v: a hedge was sent after the request ended", st)
		}
	})
	t.Run("after the hedge", func(t *testing.T) {
		clk := newFakeClock()
		hd := newHedge(clk)
		var second atomic.Value // the second attempt's context error, once it returned
		h := guard.NewChain(hd).Middleware(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			if r.Header.Get(guard.AttemptHeader) == "2" {
				<-r.Context().Done()
				second.Store(r.Context().Err())
				return
			}
			clk.Advance(10 * time.Millisecond)
			panic(http.ErrAbortHandler)
		}))
		if v := serveRecovering(h); v != http.ErrAbortHandler {
			t.Fatalf("recovered %v, want the handler's panic", v)
		}
		if err, _ := second.Load().(error); err != context.Canceled {
			t.Errorf("second attempt: %v when the panic went on, want it cancelled and returned", err)
		}
	})
}

// The reverse proxy panics with http.ErrAbortHandler when a peer goes away
// mid-response. In the hedge's second attempt, which runs in a goroutine of
// its own, that must fail the attempt, not the process: the first attempt
// still answers.
func TestHedge_SecondAttemptPanics(t *testing.T) {
	clk := newFakeClock()
	c := guard.DefaultHedgeConfig()
	c.Delay, c.Quantile = 10*time.Millisecond, 0
	hd, err := guard.NewHedge("orders", c, guard.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	panicked := make(chan struct{})
	h := guard.NewChain(hd).Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(guard.AttemptHeader) == "2" {
			close(panicked)
			panic(http.ErrAbortHandler)
		}
		clk.Advance(10 * time.Millisecond) // the hedge fires
		select {
		case <-panicked:
		case <-time.After(5 * time.Second):
			t.Error("the second attempt never ran")
		}
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "first")
	}))
	rec := serve(h, "GET", "")
	if rec.Code != http.StatusOK || rec.Body.String() != "first" {
		t.Errorf("answer %d %q, want the first attempt's 200 first", rec.Code, rec.Body.String())
	}
}

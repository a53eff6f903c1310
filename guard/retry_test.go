package guard_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resctl/resctl/guard"
)

// script answers each call with the next status of a list (the last
// repeats), and remembers the attempt headers and bodies it saw.
type script struct {
	mu       sync.Mutex
	statuses []int
	header   http.Header // set on every answer
	calls    int
	attempts []string
	ids      []string
	bodies   []string
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	st := s.statuses[min(s.calls, len(s.statuses)-1)]
	s.calls++
	s.attempts = append(s.attempts, r.Header.Get(guard.AttemptHeader))
	s.ids = append(s.ids, r.Header.Get(guard.RequestIDHeader))
	s.bodies = append(s.bodies, string(b))
	s.mu.Unlock()
	for k, v := range s.header {
		w.Header()[k] = v
	}
	w.WriteHeader(st)
	io.WriteString(w, "answer "+strconv.Itoa(st))
}

func newRetry(t *testing.T, edit func(*guard.RetryConfig)) *guard.Retry {
	t.Helper()
	c := guard.DefaultRetryConfig()
	c.Backoff.Base, c.Backoff.Max = time.Microsecond, time.Millisecond
	if edit != nil {
		edit(&c)
	}
	r, err := guard.NewRetry("orders", c, guard.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func serve(h http.Handler, method, body string) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, "/api/orders", rd)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestRetry_WhatIsRetried(t *testing.T) {
	tests := []struct {
		name     string
		method   string
		statuses []int
		header   http.Header
		edit     func(*guard.RetryConfig)
		want     int // final status
		calls    int
	}{
		{"503 then 200: retried", "GET", []int{503, 200}, nil, nil, 200, 2},
		{"502, 504 then 200", "GET", []int{502, 504, 200}, nil, nil, 200, 3},
		{"429 and 408 are retried", "GET", []int{429, 408, 200}, nil, nil, 200, 3},
		{"attempts are capped", "GET", []int{503}, nil, nil, 503, 3},
		{"500 is not retried by default", "GET", []int{500, 200}, nil, nil, 500, 1},
		{"409 is never retried", "GET", []int{409, 200}, nil, nil, 409, 1},
		{"POST is not idempotent", "POST", []int{503, 200}, nil, nil, 503, 1},
		{"unless the route says so", "POST", []int{503, 200}, nil, func(c *guard.RetryConfig) { c.Methods = append(c.Methods, "POST") }, 200, 2},
		{"the proxy's transport errors", "GET", []int{502}, http.Header{guard.UpstreamErrorHeader: {"upstream"}}, nil, 502, 3},
		{"a guard's rejection is not retried", "GET", []int{503, 200}, http.Header{guard.GuardHeader: {"orders"}}, nil, 503, 1},
		{"gRPC UNAVAILABLE", "GET", []int{200}, http.Header{"Grpc-Status": {"14"}}, nil, 200, 3},
		{"gRPC INVALID_ARGUMENT is final", "GET", []int{200}, http.Header{"Grpc-Status": {"3"}}, nil, 200, 1},
		{"Retry-After beyond max_elapsed gives up", "GET", []int{503, 200}, http.Header{"Retry-After": {"60"}}, nil, 503, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &script{statuses: tt.statuses, header: tt.header}
			r := newRetry(t, tt.edit)
			rec := serve(guard.NewChain(r).Middleware(s), tt.method, "")
			if rec.Code != tt.want || s.calls != tt.calls {
				t.Errorf("answered %d after %d calls, want %d after %d", rec.Code, s.calls, tt.want, tt.calls)
			}
			if want := "answer " + strconv.Itoa(tt.want); rec.Body.String() != want {
				t.Errorf("body %q, want only the last attempt's %q", rec.Body.String(), want)
			}
			st := r.RetryStats()
			if st.Calls != 1 || int(st.Attempts) != tt.calls {
				t.Errorf("stats %+v: want 1 call and %d attempts", st, tt.calls)
			}
		})
	}
}

func TestRetry_AttemptsCarryTheirNumberIDAndBody(t *testing.T) {
	s := &script{statuses: []int{503, 503, 200}}
	r := newRetry(t, func(c *guard.RetryConfig) { c.Methods = []string{"PUT"} })
	rec := serve(guard.NewChain(r).Middleware(s), "PUT", `{"qty":2}`)
	if rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	if got := strings.Join(s.attempts, ","); got != "1,2,3" {
		t.Errorf("attempt headers %s, want 1,2,3", got)
	}
	if s.ids[0] == "" || s.ids[0] != s.ids[1] || s.ids[1] != s.ids[2] {
		t.Errorf("request ids %q: want one id on every attempt", s.ids)
	}
	for i, b := range s.bodies {
		if b != `{"qty":2}` {
			t.Errorf("attempt %d body %q: the body must be replayed", i+1, b)
		}
	}
}

func TestRetry_BodyOverTheLimitIsSentOnce(t *testing.T) {
	s := &script{statuses: []int{503, 200}}
	r := newRetry(t, func(c *guard.RetryConfig) { c.Methods, c.MaxBody = []string{"PUT"}, 4 })
	rec := serve(guard.NewChain(r).Middleware(s), "PUT", "0123456789")
	if rec.Code != 503 || s.calls != 1 || s.bodies[0] != "0123456789" {
		t.Errorf("status %d after %d calls with body %q: want the whole body sent once", rec.Code, s.calls, s.bodies)
	}
}

func TestRetry_BudgetStopsAmplification(t *testing.T) {
	s := &script{statuses: []int{503}}
	r := newRetry(t, func(c *guard.RetryConfig) {
		c.Budget = guard.BudgetConfig{Ratio: 10, MinPerSecond: 0, Window: time.Minute}
	})
	h := guard.NewChain(r).Middleware(s)
	for range 200 {
		serve(h, "GET", "")
	}
	st := r.RetryStats()
	// 200 requests; 10% of them may be retried: at most 20 retries.
	if st.Retried > 20 || st.Retried < 18 || s.calls != 200+int(st.Retried) {
		t.Errorf("%d retries, %d upstream calls for 200 requests; want about 20 retries", st.Retried, s.calls)
	}
	if st.BudgetExhausted == 0 || r.State() != "exhausted" {
		t.Errorf("budget exhausted %d times, state %s; want refusals and state exhausted", st.BudgetExhausted, r.State())
	}
}

// TestRetry_ExhaustedEndsAfterAQuietSecond: once failures stop, nothing
// is retried, so no retry's admission can end the state; the requests
// that now succeed on their first attempt do, a second after the last
// refusal.
func TestRetry_ExhaustedEndsAfterAQuietSecond(t *testing.T) {
	clk := noWaitClock{newFakeClock()}
	s := &script{statuses: []int{503}}
	c := guard.DefaultRetryConfig()
	c.Backoff.Base, c.Backoff.Max = time.Microsecond, time.Microsecond
	c.Budget = guard.BudgetConfig{Ratio: 10, Window: time.Minute}
	r, err := guard.NewRetry("orders", c, guard.Options{Clock: clk, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	h := guard.NewChain(r).Middleware(s)
	for range 50 {
		serve(h, "GET", "")
	}
	if r.State() != "exhausted" {
		t.Fatalf("state %s after an outage over budget, want exhausted", r.State())
	}
	s.mu.Lock()
	s.statuses = []int{200}
	s.mu.Unlock()
	clk.Advance(500 * time.Millisecond)
	serve(h, "GET", "")
	if r.State() != "exhausted" {
		t.Errorf("state %s half a second after the last refusal, want exhausted", r.State())
	}
	clk.Advance(600 * time.Millisecond)
	serve(h, "GET", "")
	if r.State() != "passing" {
		t.Errorf("state %s a quiet second after the outage, want passing", r.State())
	}
}

// noWaitClock is a fake clock whose timers go off at once: a backoff
// waits for nothing while the clock stands still.
type noWaitClock struct{ *fakeClock }

func (noWaitClock) AfterFunc(_ time.Duration, f func()) func() bool {
	go f()
	return func() bool { return false }
}

// TestRetry_GRPCCalls: every gRPC call is a POST, which the default
// methods leave out (a stream's body cannot be replayed); with POST
// listed, a unary call is retried on its status.
func TestRetry_GRPCCalls(t *testing.T) {
	for _, methods := range [][]string{nil, {"POST"}} {
		t.Run(fmt.Sprint(methods), func(t *testing.T) {
			var calls atomic.Int32
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/grpc")
				if calls.Add(1) == 1 {
					w.Header().Set("Grpc-Status", "14") // UNAVAILABLE, trailers-only
				} else {
					w.Header().Set("Grpc-Status", "0")
				}
				w.WriteHeader(200)
			})
			r := newRetry(t, func(c *guard.RetryConfig) {
				if methods != nil {
					c.Methods = methods
				}
			})
			req := httptest.NewRequest("POST", "/demo.Orders/Get", strings.NewReader("\x00\x00\x00\x00\x00"))
			req.Header.Set("Content-Type", "application/grpc")
			rec := httptest.NewRecorder()
			guard.NewChain(r).Middleware(h).ServeHTTP(rec, req)
			want := int32(1)
			if methods != nil {
				want = 2
			}
			if calls.Load() != want {
				t.Errorf("%d calls (final grpc-status %q), want %d", calls.Load(), rec.Header().Get("Grpc-Status"), want)
			}
		})
	}
}

func TestRetry_ClientGoneStopsRetrying(t *testing.T) {
	var calls atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		cancel()
		w.WriteHeader(503)
	})
	r := newRetry(t, nil)
	req := httptest.NewRequest("GET", "/", nil).WithContext(ctx)
	rec := httptest.NewRecorder()
	guard.NewChain(r).Middleware(h).ServeHTTP(rec, req)
	if calls.Load() != 1 {
		t.Errorf("%d calls after the client went away, want 1", calls.Load())
	}
}

func TestRetry_BreakerBeforeRetrySeesOneCall(t *testing.T) {
	s := &script{statuses: []int{503, 503, 200}}
	bc := guard.DefaultBreakerConfig()
	br, _ := guard.NewBreaker("b", bc, guard.Options{})
	inner, _ := guard.NewBreaker("inner", bc, guard.Options{})
	r := newRetry(t, nil)
	h := guard.NewChain(br, r, inner).Middleware(s)
	if rec := serve(h, "GET", ""); rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	if a := br.Stats().Admitted; a != 1 {
		t.Errorf("the breaker before the retry admitted %d calls, want 1", a)
	}
	if a := inner.Stats().Admitted; a != 3 {
		t.Errorf("the breaker after the retry admitted %d calls, want 3 (one per attempt)", a)
	}
}

func TestRetryConfig_Check(t *testing.T) {
	tests := []struct {
		name string
		edit func(*guard.RetryConfig)
		want string
	}{
		{"unbounded attempts", func(c *guard.RetryConfig) { c.Attempts = 0 }, "attempts: 0 is not 1..10"},
		{"too many attempts", func(c *guard.RetryConfig) { c.Attempts = 100 }, "attempts: 100 is not 1..10"},
		{"no time cap", func(c *guard.RetryConfig) { c.MaxElapsed = 0 }, "max_elapsed: must be above zero"},
		{"budget above 100%", func(c *guard.RetryConfig) { c.Budget.Ratio = 150 }, "budget.ratio: 150% is above 100%"},
		{"an empty budget", func(c *guard.RetryConfig) { c.Budget.Ratio, c.Budget.MinPerSecond = 0, 0 }, "budget.ratio: with min_per_second 0"},
		{"409 in retry_on", func(c *guard.RetryConfig) { c.RetryOn.Status = []string{"503", "409"} }, `retry_on.status[1]: "409"`},
		{"4xx in retry_on", func(c *guard.RetryConfig) { c.RetryOn.Status = []string{"4xx"} }, `retry_on.status[0]: "4xx"`},
		{"unknown jitter", func(c *guard.RetryConfig) { c.Backoff.Jitter = "random" }, `backoff.jitter: "random" is not`},
		{"max below base", func(c *guard.RetryConfig) { c.Backoff.Max = time.Millisecond }, "backoff.max: 1ms is below base 25ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := guard.DefaultRetryConfig()
			tt.edit(&c)
			ps := problems(&c)
			if len(ps) == 0 || !strings.Contains(strings.Join(ps, "\n"), tt.want) {
				t.Errorf("problems %q, want one containing %q", ps, tt.want)
			}
		})
	}
	c := guard.DefaultRetryConfig()
	mustCheck(t, &c)
}

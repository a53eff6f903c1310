package guard_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/resctl/resctl/guard"
)

func TestChain_OrderAndSkippedRelease(t *testing.T) {
	clk := newFakeClock()
	bh := newBulkhead(t, clk, 10, 0, 0)
	rc := guard.DefaultRateLimitConfig()
	rc.Rate, rc.Burst = 1, 1
	rl, _ := guard.NewRateLimit("rl", rc, guard.Options{Clock: clk})
	c := guard.NewChain(bh, rl)
	ran := 0
	do := func() error {
		return c.Do(t.Context(), &guard.Request{}, func(context.Context) guard.Outcome { ran++; return ok200 })
	}
	if err := do(); err != nil {
		t.Fatal(err)
	}
	err := do()
	rejected(t, err, guard.ErrLimited, "rate")
	if ran != 1 || bh.InFlight() != 0 {
		t.Errorf("call ran %d times, bulkhead holds %d; want 1 and its slot freed after the rate limit refused", ran, bh.InFlight())
	}
}

func TestChain_PanicReleasesPermits(t *testing.T) {
	bh := newBulkhead(t, newFakeClock(), 1, 0, 0)
	c := guard.NewChain(bh)
	func() {
		defer func() { _ = recover() }()
		c.Do(t.Context(), &guard.Request{}, func(context.Context) guard.Outcome { panic("boom") })
	}()
	if bh.InFlight() != 0 {
		t.Errorf("a panicking call kept its slot")
	}
}

func TestChain_MeasuresDuration(t *testing.T) {
	clk := newFakeClock()
	b := newBreaker(t, clk, nil, 1, func(c *guard.BreakerConfig) {
		c.SlowCall = guard.SlowCallConfig{Over: 100 * time.Millisecond, Rate: 50}
	})
	c := guard.NewChain(b)
	c.SetClock(clk)
	for range 5 {
		c.Do(t.Context(), &guard.Request{}, func(context.Context) guard.Outcome {
			clk.Advance(200 * time.Millisecond)
			return guard.Outcome{Status: 200}
		})
	}
	if b.State() != "open" {
		t.Errorf("five 200ms calls timed by the chain: breaker %s, want open", b.State())
	}
}

// On the system clock a chain calls a breaker, an adaptive limit and a
// rate limit by their own methods, not through Policy: they admit,
// refuse, free the permits taken before a refusal and learn from outcomes
// as through Policy.
func TestChain_CallsSystemClockPoliciesDirectly(t *testing.T) {
	bc := guard.DefaultBreakerConfig()
	bc.ConsecutiveFailures = 1
	br, err := guard.NewBreaker("b", bc, guard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ac := guard.DefaultAdaptiveLimitConfig()
	ac.InitialLimit, ac.MinLimit, ac.MaxLimit = 1, 1, 1
	al, err := guard.NewAdaptiveLimit("l", ac, guard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rc := guard.DefaultRateLimitConfig()
	rc.Rate, rc.Burst = 1e-6, 2 // two calls, then none for days
	rl, err := guard.NewRateLimit("r", rc, guard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := guard.NewChain(br, al, rl)
	do := func(status int, during func()) error {
		return c.Do(t.Context(), &guard.Request{}, func(context.Context) guard.Outcome {
			if during != nil {
				during()
			}
			return guard.Outcome{Status: status}
		})
	}

	if err := do(200, nil); err != nil {
		t.Fatal(err)
	}
	// A second call, in flight at the limit of one, keeps out a third, and
	// its 503 trips the breaker.
	if err := do(503, func() { rejected(t, do(200, nil), guard.ErrLimited, "limit") }); err != nil {
		t.Fatal(err)
	}
	if br.State() != "open" || al.InFlight() != 0 {
		t.Errorf("after a 503: breaker %s, limit holds %d; want open and 0", br.State(), al.InFlight())
	}
	rejected(t, do(200, nil), guard.ErrOpen, "open")
	for _, p := range []struct {
		name string
		got  guard.Stats
		want uint64
	}{{"breaker", br.Stats(), 3}, {"limit", al.Stats(), 2}, {"rate", rl.Stats(), 2}} {
		if p.got.Admitted != p.want {
			t.Errorf("%s admitted %d calls, want %d", p.name, p.got.Admitted, p.want)
		}
	}

	// The rate limit's bucket is empty: it refuses, and the breaker and
	// limit before it free their permits, learning nothing.
	br2, err := guard.NewBreaker("b2", bc, guard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c = guard.NewChain(br2, al, rl)
	rejected(t, do(200, nil), guard.ErrLimited, "rate")
	if br2.State() != "closed" || al.InFlight() != 0 {
		t.Errorf("after the rate limit refused: breaker %s, limit holds %d; want closed and 0", br2.State(), al.InFlight())
	}
}

// waiting admits every call after a wait of its own, and notes when it let
// the call go.
type waiting struct {
	wait  time.Duration
	after time.Time
}

func (*waiting) Name() string { return "waiting" }
func (w *waiting) Acquire(context.Context, *guard.Request) (guard.Permit, error) {
	time.Sleep(w.wait)
	w.after = time.Now()
	return guard.Permit{}, nil
}
func (*waiting) Release(guard.Permit, guard.Outcome) {}

// heard notes the outcome it is told.
type heard struct{ o guard.Outcome }

func (*heard) Name() string { return "heard" }
func (*heard) Acquire(context.Context, *guard.Request) (guard.Permit, error) {
	return guard.Permit{}, nil
}
func (h *heard) Release(_ guard.Permit, o guard.Outcome) { h.o = o }

// On the system clock a chain hands a reading of the time from policy to
// policy (the rate limit takes one); a policy that may wait makes it
// stale, and the call must then be timed from after the wait. The duration the
// chain measures can be no longer than from the end of the wait to the
// return of Do; timed from before the wait, it would be longer by the
// whole wait.
func TestChain_TimesCallAfterAWaitingPolicy(t *testing.T) {
	rc := guard.DefaultRateLimitConfig()
	rc.Rate = 1e9
	rl, err := guard.NewRateLimit("r", rc, guard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := &waiting{wait: 20 * time.Millisecond}
	h := &heard{}
	c := guard.NewChain(rl, w, h)
	var took time.Duration
	if err := c.Do(t.Context(), &guard.Request{}, func(context.Context) guard.Outcome {
		start := time.Now()
		time.Sleep(2 * time.Millisecond)
		took = time.Since(start)
		return guard.Outcome{Status: 200}
	}); err != nil {
		t.Fatal(err)
	}
	bound := time.Since(w.after)
	if h.o.Duration < took || h.o.Duration > bound {
		t.Errorf("call timed %v; want at least the %v the call took and at most the %v from the end of the wait to Do's return", h.o.Duration, took, bound)
	}
}

func TestMiddleware_Rejections(t *testing.T) {
	clk := newFakeClock()
	tests := []struct {
		name       string
		policy     guard.Policy
		status     int
		retryAfter string
	}{
		{"open breaker: 503 with Retry-After", func() guard.Policy {
			b := newBreaker(t, clk, nil, 1, nil)
			for range 5 {
				call(t, b, fail)
			}
			return b
		}(), 503, "1"},
		{"rate limit: 429 with Retry-After rounded up", func() guard.Policy {
			c := guard.DefaultRateLimitConfig()
			c.Rate, c.Burst = 0.5, 1
			l, _ := guard.NewRateLimit("orders-rate", c, guard.Options{Clock: clk})
			call(t, l, ok200)
			return l
		}(), 429, "2"},
		{"full bulkhead: 503 without Retry-After", func() guard.Policy {
			b := newBulkhead(t, clk, 1, 0, 0)
			b.Acquire(t.Context(), nil)
			return b
		}(), 503, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := guard.NewChain(tt.policy).Middleware(upstream{})
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/orders", nil))
			if rec.Code != tt.status {
				t.Errorf("status %d, want %d", rec.Code, tt.status)
			}
			if got := rec.Header().Get(guard.GuardHeader); got != tt.policy.Name() {
				t.Errorf("%s = %q, want %q", guard.GuardHeader, got, tt.policy.Name())
			}
			if got := rec.Header().Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tt.retryAfter)
			}
			if !strings.Contains(rec.Body.String(), `"guard":"`+tt.policy.Name()+`"`) {
				t.Errorf("body %q does not name the policy", rec.Body.String())
			}
		})
	}
}

func TestMiddleware_RecordsStatusAndTransportErrors(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		opens   bool
	}{
		{"5xx trip the breaker", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) }, true},
		{"the harness's transport errors trip it", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set(guard.UpstreamErrorHeader, "upstream")
			w.WriteHeader(502)
		}, true},
		{"4xx do not", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(404) }, false},
		{"a client gone (499) does not", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(499) }, false},
		{"an implicit 200 does not", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBreaker(t, newFakeClock(), nil, 1, func(c *guard.BreakerConfig) {
				c.Failure.Status = []string{"503"} // 502s count through the transport error alone
			})
			h := guard.NewChain(b).Middleware(tt.handler)
			for range 5 {
				h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
			}
			if open := b.State() == "open"; open != tt.opens {
				t.Errorf("breaker %s, want open=%v", b.State(), tt.opens)
			}
		})
	}
}

func TestCollector(t *testing.T) {
	clk := newFakeClock()
	b := newBreaker(t, clk, nil, 1, nil)
	for range 5 {
		call(t, b, fail)
	}
	call(t, b, ok200)
	bh := newBulkhead(t, clk, 7, 0, 0)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(guard.NewChain(b, bh).Collector())
	want := `
# HELP resctl_guard_admitted_total Calls a guard policy admitted.
# TYPE resctl_guard_admitted_total counter
resctl_guard_admitted_total{kind="breaker",policy="orders"} 5
resctl_guard_admitted_total{kind="bulkhead",policy="bh"} 0
# HELP resctl_guard_limit The current limit of a guard policy: calls in flight, or calls per second for rate limits.
# TYPE resctl_guard_limit gauge
resctl_guard_limit{kind="bulkhead",policy="bh"} 7
# HELP resctl_guard_rejected_total Calls a guard policy rejected, by reason.
# TYPE resctl_guard_rejected_total counter
resctl_guard_rejected_total{kind="breaker",policy="orders",reason="half_open_full"} 0
resctl_guard_rejected_total{kind="breaker",policy="orders",reason="open"} 1
resctl_guard_rejected_total{kind="bulkhead",policy="bh",reason="full"} 0
resctl_guard_rejected_total{kind="bulkhead",policy="bh",reason="queue_full"} 0
resctl_guard_rejected_total{kind="bulkhead",policy="bh",reason="queue_timeout"} 0
# HELP resctl_guard_state Whether a guard policy is in a state (1) or not (0).
# TYPE resctl_guard_state gauge
resctl_guard_state{kind="breaker",policy="orders",state="closed"} 0
resctl_guard_state{kind="breaker",policy="orders",state="half_open"} 0
resctl_guard_state{kind="breaker",policy="orders",state="open"} 1
resctl_guard_state{kind="bulkhead",policy="bh",state="limiting"} 0
resctl_guard_state{kind="bulkhead",policy="bh",state="passing"} 1
# HELP resctl_guard_transitions_total State transitions of a guard policy.
# TYPE resctl_guard_transitions_total counter
resctl_guard_transitions_total{from="closed",kind="breaker",policy="orders",to="open"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"resctl_guard_admitted_total", "resctl_guard_limit", "resctl_guard_rejected_total",
		"resctl_guard_state", "resctl_guard_transitions_total"); err != nil {
		t.Error(err)
	}
}

// grpcServer serves the health service behind the chain over an in-memory
// listener and returns a client connection.
func grpcServer(t *testing.T, c *guard.Chain) *grpc.ClientConn {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(grpc.UnaryInterceptor(c.UnaryServerInterceptor()), grpc.StreamInterceptor(c.StreamServerInterceptor()))
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	go srv.Serve(lis)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		srv.Stop()
		hs.Shutdown()
	})
	return conn
}

func TestGRPC_Interceptors(t *testing.T) {
	clk := newFakeClock()
	c := guard.DefaultRateLimitConfig()
	c.Rate, c.Burst = 0.25, 2
	l, _ := guard.NewRateLimit("grpc-rate", c, guard.Options{Clock: clk})
	conn := grpcServer(t, guard.NewChain(l))
	client := healthpb.NewHealthClient(conn)
	ctx := t.Context()

	if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("first unary call: %v", err)
	}
	stream, err := client.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatalf("admitted stream: %v", err)
	}

	var md metadata.MD
	_, err = client.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&md))
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("over the rate: %v, want RESOURCE_EXHAUSTED", err)
	}
	if got := md.Get(guard.GuardMetadata); len(got) != 1 || got[0] != "grpc-rate" {
		t.Errorf("%s = %q, want grpc-rate", guard.GuardMetadata, got)
	}
	if got := md.Get("retry-after"); len(got) != 1 || got[0] != "4" {
		t.Errorf("retry-after = %q, want 4", got)
	}

	s2, err := client.Watch(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&md))
	if err == nil {
		_, err = s2.Recv()
	}
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("rejected stream: %v, want RESOURCE_EXHAUSTED", err)
	}

	b := newBreaker(t, clk, nil, 1, nil)
	for range 5 {
		call(t, b, fail)
	}
	conn = grpcServer(t, guard.NewChain(b))
	_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "open") {
		t.Errorf("open breaker: %v, want UNAVAILABLE", err)
	}
}

func TestGRPC_OutcomesReachPolicies(t *testing.T) {
	b := newBreaker(t, newFakeClock(), nil, 1, nil)
	c := guard.NewChain(b)
	icpt := c.UnaryServerInterceptor()
	info := &grpc.UnaryServerInfo{FullMethod: "/svc/M"}
	for range 5 {
		icpt(t.Context(), nil, info, func(context.Context, any) (any, error) {
			return nil, status.Error(codes.Unavailable, "down")
		})
	}
	if b.State() != "open" {
		t.Errorf("five UNAVAILABLE answers: breaker %s, want open", b.State())
	}
	_, err := icpt(t.Context(), nil, info, func(context.Context, any) (any, error) { return "x", nil })
	var rej *guard.Rejection
	if !errors.As(err, &rej) && status.Code(err) != codes.Unavailable {
		t.Errorf("rejection: %v", err)
	}
}

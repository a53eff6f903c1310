package guard_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/resctl/resctl/guard"
)

// permissive configures each kind so that it never rejects the traffic of
// the suite. A kind missing here fails TestConformance: every kind must go
// through the suite.
var permissive = map[string]func(guard.Config){
	"breaker": func(c guard.Config) {
		b := c.(*guard.BreakerConfig)
		b.FailureRate, b.ConsecutiveFailures = 0, 0
	},
	"throttle":            func(guard.Config) {},
	"concurrency_breaker": func(c guard.Config) { c.(*guard.ConcurrencyBreakerConfig).MaxInFlight = 1 << 20 },
	"memory": func(c guard.Config) {
		m := c.(*guard.MemoryConfig)
		m.Yellow = guard.MemoryLevel{Bytes: 1 << 60}
		m.Red = guard.MemoryLevel{Bytes: 1 << 61}
	},
	"bulkhead": func(c guard.Config) { c.(*guard.BulkheadConfig).MaxInFlight = 1 << 20 },
	"adaptive_limit": func(c guard.Config) {
		a := c.(*guard.AdaptiveLimitConfig)
		a.MinLimit, a.InitialLimit, a.MaxLimit = 1<<20, 1<<20, 1<<20
	},
	"shed":       func(c guard.Config) { c.(*guard.ShedConfig).CPUThreshold = 100 },
	"rate_limit": func(c guard.Config) { c.(*guard.RateLimitConfig).Rate = 1e9 },
	"retry":      func(guard.Config) {},
	"timeout":    func(c guard.Config) { c.(*guard.TimeoutConfig).After = time.Hour },
	"hedge":      func(c guard.Config) { h := c.(*guard.HedgeConfig); h.Delay, h.Quantile = time.Hour, 0 },
	"fallback":   func(c guard.Config) { c.(*guard.FallbackConfig).On = guard.FailureConfig{} },
}

// tight configures each kind to reject as soon as it can, for the
// cancellation checks: a policy that blocks must give up with its caller.
var tight = map[string]func(guard.Config){
	"bulkhead": func(c guard.Config) { b := c.(*guard.BulkheadConfig); b.MaxInFlight, b.Queue = 1, 10 },
}

func conformingPolicy(t *testing.T, kind string, edits ...map[string]func(guard.Config)) guard.Policy {
	t.Helper()
	c, ok := guard.NewConfig(kind)
	if !ok {
		t.Fatalf("NewConfig(%q): unknown, though Kinds lists it", kind)
	}
	fill, ok := permissive[kind]
	if !ok {
		t.Fatalf("kind %q has no permissive configuration in the conformance suite: add one", kind)
	}
	fill(c)
	for _, e := range edits {
		if f, ok := e[kind]; ok {
			f(c)
		}
	}
	mustCheck(t, c)
	p, err := c.Build(kind, guard.Options{Seed: 1, Signals: &fakeSignals{limit: 1 << 40}})
	if err != nil {
		t.Fatal(err)
	}
	if cl, ok := p.(io.Closer); ok {
		t.Cleanup(func() { cl.Close() })
	}
	return p
}

// upstream answers with what it saw, with a fixed date so that responses
// compare byte for byte; /fail answers 500 and /missing 404.
type upstream struct{}

func (upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h := w.Header()
	h.Set("Date", "Mon, 02 Jan 2006 15:04:05 GMT")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Add("Set-Cookie", "a=1")
	switch r.URL.Path {
	case "/fail":
		w.WriteHeader(http.StatusInternalServerError)
	case "/missing":
		w.WriteHeader(http.StatusNotFound)
	default:
		w.WriteHeader(http.StatusCreated)
	}
	fmt.Fprintf(w, "%s %s?%s body=%q", r.Method, r.URL.Path, r.URL.RawQuery, b)
}

var rawRequests = []string{
	"GET /api/orders?id=7 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	"POST /api/orders HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\nConnection: close\r\n\r\n{\"item\":1}",
	"GET /missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	"GET /fail HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	"HEAD /api/orders HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
}

func exchange(t *testing.T, addr, req string) []byte {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestConformance runs every policy kind through what every policy must
// do: configured never to reject, change no outcome; give up at once when
// the caller has; stay consistent under parallel callers (with -race); and
// leave no goroutine behind.
func TestConformance(t *testing.T) {
	for _, kind := range guard.Kinds() {
		t.Run(kind, func(t *testing.T) {
			ignore := goleak.IgnoreCurrent()
			t.Cleanup(func() { goleak.VerifyNone(t, ignore) })

			t.Run("never rejecting changes no outcome", func(t *testing.T) {
				plain := httptest.NewServer(upstream{})
				defer plain.Close()
				for _, n := range []int{1, 2} {
					policies := make([]guard.Policy, n)
					for i := range policies {
						policies[i] = conformingPolicy(t, kind)
					}
					srv := httptest.NewServer(guard.NewChain(policies...).Middleware(upstream{}))
					for range 3 {
						for _, r := range rawRequests {
							want := exchange(t, plain.Listener.Addr().String(), r)
							got := exchange(t, srv.Listener.Addr().String(), r)
							if !bytes.Equal(got, want) {
								t.Errorf("%d× %s: %q changed:\n got %q\nwant %q", n, kind, strings.SplitN(r, "\r", 2)[0], got, want)
							}
						}
					}
					srv.Close()
				}
			})

			t.Run("a cancelled caller returns at once", func(t *testing.T) {
				p := conformingPolicy(t, kind, tight)
				held, err := p.Acquire(context.Background(), &guard.Request{Route: "/a"})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				done := make(chan error, 1)
				go func() {
					pm, err := p.Acquire(ctx, &guard.Request{Route: "/a"})
					if err == nil {
						p.Release(pm, guard.Outcome{Skipped: true})
					}
					done <- err
				}()
				select {
				case err := <-done:
					var rej *guard.Rejection
					if err != nil && !errors.Is(err, context.Canceled) && !errors.As(err, &rej) {
						t.Errorf("Acquire on a cancelled context: %v", err)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("Acquire on a cancelled context did not return")
				}
				p.Release(held, guard.Outcome{Skipped: true})
			})

			t.Run("a caller cancelled while waiting returns at once", func(t *testing.T) {
				c := guard.NewChain(conformingPolicy(t, kind, tight))
				block := make(chan struct{})
				started := make(chan struct{})
				go c.Do(context.Background(), &guard.Request{}, func(context.Context) guard.Outcome {
					close(started)
					<-block
					return guard.Outcome{Status: 200}
				})
				<-started
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
				defer cancel()
				done := make(chan error, 1)
				go func() {
					done <- c.Do(ctx, &guard.Request{}, func(context.Context) guard.Outcome { return guard.Outcome{Status: 200} })
				}()
				select {
				case <-done:
				case <-time.After(5 * time.Second):
					t.Fatal("a waiting call outlived its context")
				}
				close(block)
			})

			t.Run("parallel callers", func(t *testing.T) {
				p := conformingPolicy(t, kind)
				c := guard.NewChain(p)
				var wg sync.WaitGroup
				outcomes := []guard.Outcome{ok200, fail, slowOK, {Skipped: true}, {Err: context.Canceled}, {Status: 429}}
				for g := range 8 {
					wg.Go(func() {
						for i := range 300 {
							o := outcomes[(g+i)%len(outcomes)]
							err := c.Do(context.Background(), &guard.Request{Route: "/api"}, func(context.Context) guard.Outcome { return o })
							var rej *guard.Rejection
							if err != nil && !errors.As(err, &rej) {
								t.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				if f, ok := p.(interface{ InFlight() int64 }); ok && f.InFlight() != 0 {
					t.Errorf("%d calls in flight after all ended", f.InFlight())
				}
			})
		})
	}
}
